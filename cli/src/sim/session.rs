//! A phone's session id, rotated as OpenTelemetry's Android SDK does: a new session
//! after the app has spent `background` in the background, or after `max` in all,
//! whichever comes first. Times are Tokio's, so tests run it on a paused clock.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Session {
    id: String,
    started: Instant,
    background_since: Option<Instant>,
    background_limit: Duration,
    max: Duration,
    /// Sessions begun after the first.
    pub rotations: u64,
}

impl Session {
    pub fn new(now: Instant, background_limit: Duration, max: Duration) -> Session {
        Session {
            id: new_id(),
            started: now,
            background_since: None,
            background_limit,
            max,
            rotations: 0,
        }
    }

    fn rotate(&mut self, now: Instant) {
        self.id = new_id();
        self.started = now;
        self.rotations += 1;
    }

    /// The session id at `now` (a session past its longest life ends here).
    pub fn id(&mut self, now: Instant) -> &str {
        if now.duration_since(self.started) >= self.max {
            self.rotate(now);
        }
        &self.id
    }

    /// The app goes to the background.
    pub fn to_background(&mut self, now: Instant) {
        self.background_since.get_or_insert(now);
    }

    /// The app comes back; whether a new session began (it was away too long).
    pub fn to_foreground(&mut self, now: Instant) -> bool {
        match self.background_since.take() {
            Some(since) if now.duration_since(since) >= self.background_limit => {
                self.rotate(now);
                true
            }
            _ => false,
        }
    }
}

/// A session id: 32 hex digits, as the SDKs make them.
fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sessions_rotate_after_long_backgrounds_and_at_their_longest() {
        let fifteen = Duration::from_secs(15 * 60);
        let four_hours = Duration::from_secs(4 * 3600);
        let mut s = Session::new(Instant::now(), fifteen, four_hours);
        let first = s.id(Instant::now()).to_owned();

        // A short trip to the background keeps the session.
        s.to_background(Instant::now());
        tokio::time::advance(Duration::from_secs(14 * 60)).await;
        assert!(!s.to_foreground(Instant::now()));
        assert_eq!(s.id(Instant::now()), first);

        // Fifteen minutes away starts a new one.
        s.to_background(Instant::now());
        tokio::time::advance(fifteen).await;
        assert!(s.to_foreground(Instant::now()));
        let second = s.id(Instant::now()).to_owned();
        assert_ne!(second, first);
        assert_eq!(second.len(), 32);

        // In the foreground all along, a session still ends after four hours.
        tokio::time::advance(four_hours - Duration::from_secs(1)).await;
        assert_eq!(s.id(Instant::now()), second);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_ne!(s.id(Instant::now()), second);
        assert_eq!(s.rotations, 2);
    }
}
