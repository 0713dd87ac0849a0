//! Run control shared by every virtual user: start, deadline, pause and stop, and the
//! open-model pacer that hands out arrival times.
//!
//! Everything here runs on Tokio's clock, so tests drive it with a paused (fake) clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    paused: bool,
    stopped: bool,
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
}

impl Control {
    /// A run that starts now and lasts `duration`.
    pub fn new(duration: Duration) -> Self {
        let started = Instant::now();
        Self {
            state: watch::channel(State::default()).0,
            started,
            deadline: started + duration,
            pauses: Mutex::new((Duration::ZERO, None)),
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
                p.0 += now - since;
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

    /// Time spent paused so far, including a pause in progress.
    pub fn paused_total(&self) -> Duration {
        let p = self.pauses.lock().unwrap_or_else(|e| e.into_inner());
        p.0 + p.1.map_or(Duration::ZERO, |since| since.elapsed())
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
