//! The live view of a load run: its frame data, made from the run's statistics, and
//! the screen loop that runs until goose stops. Drawing itself is `tui`'s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Ending;
use super::live::{AttackHandle, AttackResult, RunView};
use crate::runtime::InstanceStatus;
use crate::tui::{DashData, EndpointLine, KeyAction, screen_thread};

/// The frame data of a load run, now.
pub fn load_data(v: &RunView, components: &(Vec<InstanceStatus>, Option<String>)) -> DashData {
    let st = v.stats.lock().unwrap_or_else(|e| e.into_inner());
    let now = v.control.elapsed().as_secs() as usize;
    // Whole seconds only: the current one is still filling.
    let full = &st.seconds[..st.seconds.len().min(now)];
    let last = full.last();
    let endpoints = st
        .per_endpoint
        .iter()
        .map(|(ep, e)| EndpointLine {
            name: ep.name().to_owned(),
            requests: e.requests,
            failures: e.failures,
            errors: e
                .statuses
                .iter()
                .filter(|(k, _)| !k.starts_with('2') && !k.starts_with('3'))
                .map(|(k, v)| format!("{k}×{v}"))
                .collect::<Vec<_>>()
                .join(" "),
            p50_ms: e.latency.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: e.latency.value_at_quantile(0.99) as f64 / 1000.0,
        })
        .collect();
    DashData {
        title: "socialctl load".into(),
        subtitle: format!(
            "{} · users {}/{} · {} · {} requests",
            v.clock(),
            st.users_signed_in,
            v.users,
            v.mode,
            st.recorded
        ),
        rate_label: "req/s".into(),
        rate: full.iter().map(|s| s.requests).collect(),
        p99_ms: full
            .iter()
            .map(|s| s.latency.value_at_quantile(0.99) / 1000)
            .collect(),
        rate_now: last.map_or(0.0, |s| s.requests as f64),
        p50_now_ms: last.map_or(0.0, |s| s.latency.value_at_quantile(0.5) as f64 / 1000.0),
        p99_now_ms: last.map_or(0.0, |s| s.latency.value_at_quantile(0.99) as f64 / 1000.0),
        endpoints,
        components: components.0.clone(),
        components_note: components.1.clone(),
        traces: v.live.snapshot(),
        traces_scope: "requests checked".into(),
        paused: v.control.is_paused(),
        can_pause: true,
    }
}

/// The live view of a load run, until goose has stopped.
pub async fn run_load(
    v: &RunView,
    mut attack: AttackHandle,
) -> anyhow::Result<(Ending, AttackResult)> {
    let (components, status_task) = crate::runtime::follow_status(v.target.clone());
    let follower = v.live.follow_run(v.stats.clone(), v.control.started());
    let ending: Arc<Mutex<Option<Ending>>> = Arc::new(Mutex::new(None));
    let done = Arc::new(AtomicBool::new(false));
    let screen = {
        let (v1, v2, comps, ending) = (v.clone(), v.clone(), components.clone(), ending.clone());
        screen_thread(
            done.clone(),
            move || load_data(&v1, &comps.lock().unwrap_or_else(|e| e.into_inner())),
            move |a| {
                match a {
                    KeyAction::Quit => {
                        v2.quit(&mut ending.lock().unwrap_or_else(|e| e.into_inner()))
                    }
                    KeyAction::TogglePause => {
                        v2.control.toggle_pause();
                    }
                    _ => {}
                }
                false
            },
        )
    };
    let result = loop {
        tokio::select! {
            r = &mut attack => break r,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        v.tick(&mut ending.lock().unwrap_or_else(|e| e.into_inner()));
    };
    done.store(true, Ordering::Relaxed);
    let drawn = tokio::task::spawn_blocking(move || screen.join()).await;
    status_task.abort();
    follower.abort();
    match drawn {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("load: the live view failed ({e}); the run went on"),
        _ => eprintln!("load: the live view stopped unexpectedly; the run went on"),
    }
    let e = ending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(Ending::Duration);
    Ok((e, result))
}
