//! Run control shared by every virtual user: start, deadline, pause and stop, and the
//! open-model pacer that hands out arrival times.
//!
//! Everything here runs on Tokio's clock, so tests drive it with a paused (fake) clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    paused: bool,
    stopped: bool,
    /// The sign-in phase is over: users may begin their day.
    day: bool,
}

/// Why a wait ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// The run's duration is over.
    Deadline,
    /// Stopped by the user (q, Ctrl-C) or by an error.
    Stopped,
}

#[derive(Debug)]
pub struct Control {
    state: watch::Sender<State>,
    started: Instant,
    deadline: Instant,
    /// Total time spent paused, and when the current pause began.
    pauses: Mutex<(Duration, Option<Instant>)>,
    /// Users whose first sign-in has not finished yet.
    signing_in: AtomicUsize,
    /// When the day began, in nanoseconds after `started`; [`NOT_YET`] before. An atomic,
    /// as every request asks for the deadline.
    day_ns: AtomicU64,
}

const NOT_YET: u64 = u64::MAX;

/// The longest the day waits for the sign-in phase (a sign-in that hangs is cut off by
/// its request timeout long before; this is a backstop).
const SIGN_IN_PHASE_LIMIT: Duration = Duration::from_secs(300);

impl Control {
    /// A run that starts now and lasts `duration`, with no sign-in phase.
    pub fn new(duration: Duration) -> Self {
        let c = Self::with_sign_in_phase(duration, 0);
        c.open_day();
        c
    }

    /// A run whose day of `duration` begins once each of `users` has finished its first
    /// sign-in ([`Control::first_sign_in_done`]), as k6's `setup` or Locust's `on_start`
    /// come before the measured window: hundreds of argon2 hashes would otherwise share
    /// the CPU with the first users' day and set its percentiles.
    pub fn with_sign_in_phase(duration: Duration, users: usize) -> Self {
        let started = Instant::now();
        Self {
            state: watch::channel(State::default()).0,
            started,
            deadline: started + duration,
            pauses: Mutex::new((Duration::ZERO, None)),
            signing_in: AtomicUsize::new(users),
            day_ns: AtomicU64::new(NOT_YET),
        }
    }

    /// When the day began, if it has.
    fn day_start(&self) -> Option<Instant> {
        match self.day_ns.load(Ordering::Acquire) {
            NOT_YET => None,
            ns => Some(self.started + Duration::from_nanos(ns)),
        }
    }

    /// Whether the sign-in phase is over.
    pub fn day_has_begun(&self) -> bool {
        self.day_start().is_some()
    }

    /// How long the sign-in phase lasted, or has lasted so far.
    pub fn sign_in_phase(&self) -> Duration {
        self.day_start()
            .map_or_else(|| self.started.elapsed(), |d| d - self.started)
    }

    /// Time into the day (sign-in phase and pauses left out).
    pub fn day_elapsed(&self) -> Duration {
        self.elapsed().saturating_sub(self.paused_total())
    }

    /// One user's first sign-in has finished (signed in or not); the last one begins the
    /// day. Later calls (a user signing in again) change nothing.
    pub fn first_sign_in_done(&self) {
        let before = self
            .signing_in
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if before == Ok(1) {
            self.open_day();
        }
    }

    fn open_day(&self) {
        let ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(NOT_YET - 1);
        // The first opening wins (the last sign-in or the backstop).
        let _ = self
            .day_ns
            .compare_exchange(NOT_YET, ns, Ordering::AcqRel, Ordering::Acquire);
        self.state.send_modify(|st| st.day = true);
    }

    /// The part of `since..now` that fell in the day (a pause during the sign-in phase
    /// is already counted as sign-in).
    fn in_day(&self, since: Instant, now: Instant) -> Duration {
        self.day_start().map_or(Duration::ZERO, |d| {
            now.saturating_duration_since(since.max(d))
        })
    }

    /// Waits for the day to begin (the sign-in phase over).
    pub async fn day_begun(&self) -> Result<(), Halt> {
        let mut rx = self.state.subscribe();
        let limit = self.started + SIGN_IN_PHASE_LIMIT;
        loop {
            let s = *rx.borrow_and_update();
            if s.stopped {
                return Err(Halt::Stopped);
            }
            if s.day {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep_until(limit) => self.open_day(),
                r = rx.changed() => if r.is_err() { return Err(Halt::Stopped) },
            }
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// When the run ends, moved later by the time spent paused.
    pub fn deadline(&self) -> Instant {
        self.deadline + self.paused_total()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn stop(&self) {
        self.state.send_modify(|s| s.stopped = true);
    }

    pub fn is_stopped(&self) -> bool {
        self.state.borrow().stopped
    }

    pub fn is_paused(&self) -> bool {
        self.state.borrow().paused
    }

    /// Pauses or resumes every user; returns whether the run is now paused.
    pub fn toggle_pause(&self) -> bool {
        let mut p = self.pauses.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let paused = match p.1.take() {
            Some(since) => {
                p.0 += self.in_day(since, now);
                false
            }
            None => {
                p.1 = Some(now);
                true
            }
        };
        self.state.send_modify(|s| s.paused = paused);
        paused
    }

    /// Time the day was not running so far: the sign-in phase, and time spent paused
    /// (a pause in progress included). The deadline, the pacer's slots and the report's
    /// seconds all leave it out.
    pub fn paused_total(&self) -> Duration {
        let paused = {
            let p = self.pauses.lock().unwrap_or_else(|e| e.into_inner());
            p.0 + p
                .1
                .map_or(Duration::ZERO, |since| self.in_day(since, Instant::now()))
        };
        paused + self.sign_in_phase()
    }

    /// Waits while paused; returns how long it waited.
    pub async fn wait_unpaused(&self) -> Result<Duration, Halt> {
        let begin = Instant::now();
        let mut rx = self.state.subscribe();
        loop {
            let s = *rx.borrow_and_update();
            if s.stopped {
                return Err(Halt::Stopped);
            }
            if !s.paused {
                return Ok(begin.elapsed());
            }
            if rx.changed().await.is_err() {
                return Err(Halt::Stopped);
            }
        }
    }

    /// Sleeps until `t` unless the run stops or ends first.
    pub async fn sleep_until(&self, t: Instant) -> Result<(), Halt> {
        let mut rx = self.state.subscribe();
        loop {
            if rx.borrow_and_update().stopped {
                return Err(Halt::Stopped);
            }
            let deadline = self.deadline();
            if Instant::now() >= deadline {
                return Err(Halt::Deadline);
            }
            if t >= deadline {
                // The wake-up is past the end: wait for the end, then say so.
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {
                        if self.deadline() <= Instant::now() {
                            return Err(Halt::Deadline);
                        }
                    }
                    r = rx.changed() => if r.is_err() { return Err(Halt::Stopped) },
                }
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep_until(t) => return Ok(()),
                r = rx.changed() => if r.is_err() { return Err(Halt::Stopped) },
            }
        }
    }

    /// Whether a request may still start now.
    pub fn may_start(&self) -> Result<(), Halt> {
        if self.is_stopped() {
            Err(Halt::Stopped)
        } else if Instant::now() >= self.deadline() {
            Err(Halt::Deadline)
        } else {
            Ok(())
        }
    }
}

/// Fixed-rate arrivals for the open model: slot k is due at `t0 + k / rate` (plus time
/// spent paused). A request's latency counts from its slot, so when every user is busy
/// the lateness shows in the percentiles instead of silently lowering the rate.
#[derive(Debug)]
pub struct Pacer {
    t0: Instant,
    interval_ns: f64,
    next: AtomicU64,
}

impl Pacer {
    pub fn new(t0: Instant, rate_per_sec: f64) -> Self {
        Self {
            t0,
            interval_ns: 1e9 / rate_per_sec.max(1e-6),
            next: AtomicU64::new(0),
        }
    }

    /// The next free slot's due time (each call takes one slot).
    pub fn take(&self, control: &Control) -> Instant {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        self.t0
            + control.paused_total()
            + Duration::from_nanos((k as f64 * self.interval_ns) as u64)
    }

    /// Slots handed out so far.
    pub fn taken(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Slots due by `now` (excluding paused time): what a perfect generator would have sent.
    pub fn due(&self, now: Instant, control: &Control) -> u64 {
        let active = now
            .saturating_duration_since(self.t0)
            .saturating_sub(control.paused_total());
        (active.as_nanos() as f64 / self.interval_ns).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// `workers` users take slots and "serve" each in `service`; returns every latency
    /// measured from the slot, as `socialctl load --rate` does.
    async fn run_open(
        rate: f64,
        workers: usize,
        service: Duration,
        run: Duration,
    ) -> (Vec<Duration>, Arc<Pacer>, Arc<Control>) {
        let control = Arc::new(Control::new(run));
        let pacer = Arc::new(Pacer::new(control.started(), rate));
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (control, pacer) = (control.clone(), pacer.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let slot = pacer.take(&control);
                    if control.sleep_until(slot).await.is_err() {
                        return lat;
                    }
                    tokio::time::sleep(service).await;
                    lat.push(slot.elapsed());
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        (all, pacer, control)
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_honoured_when_users_keep_up() {
        let (lat, _, _) =
            run_open(200.0, 4, Duration::from_millis(5), Duration::from_secs(3)).await;
        // 3 s at 200/s: slots 0..=599 are due before the deadline.
        assert_eq!(lat.len(), 600);
        assert!(
            lat.iter().all(|l| *l == Duration::from_millis(5)),
            "no slot ran late"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_server_shows_in_latency_not_in_a_lower_rate() {
        // One user, 100 ms per request, 50 requests/s asked: the user falls behind by
        // 80 ms per request, and latency from the slot grows with it.
        let (mut lat, pacer, control) =
            run_open(50.0, 1, Duration::from_millis(100), Duration::from_secs(2)).await;
        lat.sort();
        assert_eq!(lat.len(), 20, "only 20 requests fit in 2 s at 100 ms each");
        assert_eq!(lat[0], Duration::from_millis(100));
        assert_eq!(*lat.last().unwrap(), Duration::from_millis(100 + 19 * 80));
        let due = pacer.due(control.started() + Duration::from_secs(2), &control);
        assert_eq!(due, 100, "a perfect generator would have sent 100");
    }

    #[tokio::test(start_paused = true)]
    async fn pausing_stops_arrivals_and_extends_the_run() {
        let control = Arc::new(Control::new(Duration::from_secs(2)));
        let pacer = Pacer::new(control.started(), 10.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(control.toggle_pause());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            pacer.due(Instant::now(), &control),
            5,
            "no slot falls due while paused"
        );
        assert!(!control.toggle_pause());
        assert_eq!(
            control.deadline(),
            control.started() + Duration::from_secs(3)
        );
        let waiter = {
            let control = control.clone();
            tokio::spawn(async move {
                control
                    .sleep_until(Instant::now() + Duration::from_secs(10))
                    .await
            })
        };
        assert_eq!(waiter.await.unwrap(), Err(Halt::Deadline));
        assert_eq!(Instant::now(), control.started() + Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_day_begins_after_every_first_sign_in_and_keeps_its_length() {
        let control = Arc::new(Control::with_sign_in_phase(Duration::from_secs(10), 2));
        let waiter = {
            let c = control.clone();
            tokio::spawn(async move { c.day_begun().await })
        };
        tokio::time::sleep(Duration::from_secs(4)).await;
        control.first_sign_in_done();
        // One user is still signing in: the day has not begun, the deadline moves on.
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert!(!waiter.is_finished());
        assert!(
            control.may_start().is_ok(),
            "the sign-in phase is not the day"
        );
        control.first_sign_in_done();
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(control.sign_in_phase(), Duration::from_secs(12));
        assert_eq!(
            control.deadline(),
            control.started() + Duration::from_secs(22)
        );
        // A user that signs in during the day does not move it.
        control.first_sign_in_done();
        assert_eq!(control.sign_in_phase(), Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_during_the_sign_in_phase_is_counted_once() {
        let control = Control::with_sign_in_phase(Duration::from_secs(10), 1);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(control.toggle_pause());
        tokio::time::sleep(Duration::from_secs(2)).await;
        control.first_sign_in_done();
        assert!(control.day_has_begun());
        tokio::time::sleep(Duration::from_secs(3)).await;
        // 5 s of sign-in phase (2 of them paused) and 3 s paused in the day.
        assert_eq!(control.paused_total(), Duration::from_secs(8));
        assert_eq!(control.day_elapsed(), Duration::ZERO);
        assert!(!control.toggle_pause());
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(control.day_elapsed(), Duration::from_secs(4));
        assert_eq!(
            control.deadline(),
            control.started() + Duration::from_secs(18)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stop_wakes_sleepers_and_paused_users() {
        let control = Arc::new(Control::new(Duration::from_secs(60)));
        control.toggle_pause();
        let paused = {
            let c = control.clone();
            tokio::spawn(async move { c.wait_unpaused().await })
        };
        let sleeper = {
            let c = control.clone();
            tokio::spawn(async move {
                c.sleep_until(Instant::now() + Duration::from_secs(30))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        control.stop();
        assert_eq!(paused.await.unwrap(), Err(Halt::Stopped));
        assert_eq!(sleeper.await.unwrap(), Err(Halt::Stopped));
        assert_eq!(control.may_start(), Err(Halt::Stopped));
        assert!(control.elapsed() < Duration::from_secs(1));
    }
}
