//! The full-screen live view of `socialctl load` and `socialctl top` (ratatui): drawing
//! only. A frame is a pure function of [`DashData`] and the focused [`Panel`], so tests
//! render frames on ratatui's `TestBackend` with fixed data; the scenarios fill
//! `DashData` (`load/view.rs`, `cmd/top.rs`). The terminal loop runs on its own thread,
//! so the load's async workers never wait for the screen or the keyboard.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Sparkline, Table};

use crate::runtime::InstanceStatus;

/// Trace completeness so far, as the sink judged it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveState {
    pub checked: usize,
    pub complete: usize,
    pub missing: usize,
    pub defects: std::collections::BTreeMap<String, usize>,
    /// Root endpoints of the traces judged last (for `top`).
    pub endpoints: Vec<verify::sink::EndpointTraffic>,
    /// For `top`: the worst root p99 (ms) of each check, oldest first.
    pub p99_history: Vec<u64>,
    /// Why the sink could not be read, when it could not.
    pub error: Option<String>,
    pub enabled: bool,
}

impl LiveState {
    pub fn percent(&self) -> Option<f64> {
        (self.checked > 0).then(|| 100.0 * self.complete as f64 / self.checked as f64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Traffic,
    Traces,
    Endpoints,
    Components,
}

impl Panel {
    /// Arrow keys move between the four panels (two rows of two).
    pub fn moved(self, key: KeyCode) -> Panel {
        use Panel::*;
        match (self, key) {
            (Traffic, KeyCode::Right) | (Traffic, KeyCode::Left) => Traces,
            (Traces, KeyCode::Right) | (Traces, KeyCode::Left) => Traffic,
            (Endpoints, KeyCode::Right) | (Endpoints, KeyCode::Left) => Components,
            (Components, KeyCode::Right) | (Components, KeyCode::Left) => Endpoints,
            (Traffic, KeyCode::Down) | (Traffic, KeyCode::Up) => Endpoints,
            (Endpoints, KeyCode::Down) | (Endpoints, KeyCode::Up) => Traffic,
            (Traces, KeyCode::Down) | (Traces, KeyCode::Up) => Components,
            (Components, KeyCode::Down) | (Components, KeyCode::Up) => Traces,
            (p, _) => p,
        }
    }
}

/// One endpoint row.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointLine {
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    /// Failures by status, e.g. `503×2 no response×1`; empty when none failed.
    pub errors: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Everything one frame shows.
#[derive(Debug, Clone, PartialEq)]
pub struct DashData {
    pub title: String,
    /// Elapsed time, users, mode.
    pub subtitle: String,
    /// Label of the throughput series (`req/s`, or `spans/s` for `top`).
    pub rate_label: String,
    /// Per second, oldest first.
    pub rate: Vec<u64>,
    /// p99 latency per second, in ms.
    pub p99_ms: Vec<u64>,
    pub rate_now: f64,
    pub p50_now_ms: f64,
    pub p99_now_ms: f64,
    pub endpoints: Vec<EndpointLine>,
    pub components: Vec<InstanceStatus>,
    pub components_note: Option<String>,
    pub traces: LiveState,
    /// What the traces panel judges (`of requests sent` / `of the newest settled traces`).
    pub traces_scope: String,
    pub paused: bool,
    /// Whether `p` pauses anything (not in `top`).
    pub can_pause: bool,
}

fn block(title: &str, focused: bool) -> Block<'_> {
    let style = if focused {
        Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    };
    Block::bordered().title(title).border_style(style)
}

fn fmt_bytes(b: Option<u64>) -> String {
    b.map_or("-".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
}

/// Draws one frame.
pub fn draw(f: &mut Frame<'_>, d: &DashData, focus: Panel) {
    let [head, top, bottom, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(9),
        Constraint::Min(6),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let mut title = vec![
        Span::styled(
            d.title.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw("  "),
        Span::raw(d.subtitle.clone()),
    ];
    if d.paused {
        title.push(Span::styled("  PAUSED", Style::default().fg(Color::Yellow)));
    }
    f.render_widget(Paragraph::new(Line::from(title)), head);

    let [traffic, traces] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);
    draw_traffic(f, d, traffic, focus == Panel::Traffic);
    draw_traces(f, d, traces, focus == Panel::Traces);
    let [endpoints, components] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);
    draw_endpoints(f, d, endpoints, focus == Panel::Endpoints);
    draw_components(f, d, components, focus == Panel::Components);

    let mut help = "q quit · ←→↑↓ move between panels".to_owned();
    if d.can_pause {
        help.insert_str(
            0,
            if d.paused {
                "p resume · "
            } else {
                "p pause · "
            },
        );
    }
    f.render_widget(
        Paragraph::new(Line::styled(help, Style::default().fg(Color::DarkGray))),
        keys,
    );
}

fn draw_traffic(f: &mut Frame<'_>, d: &DashData, area: Rect, focused: bool) {
    let b = block("Throughput and latency", focused);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let [l1, s1, l2, s2] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(inner);
    let width = inner.width as usize;
    let tail = |v: &[u64]| v[v.len().saturating_sub(width)..].to_vec();
    f.render_widget(
        Paragraph::new(format!("{} now {:.1}", d.rate_label, d.rate_now)),
        l1,
    );
    f.render_widget(
        Sparkline::default()
            .data(tail(&d.rate))
            .style(Style::default().fg(Color::Green)),
        s1,
    );
    f.render_widget(
        Paragraph::new(format!(
            "latency p50 {:.1} ms · p99 {:.1} ms",
            d.p50_now_ms, d.p99_now_ms
        )),
        l2,
    );
    f.render_widget(
        Sparkline::default()
            .data(tail(&d.p99_ms))
            .style(Style::default().fg(Color::Magenta)),
        s2,
    );
}

fn draw_traces(f: &mut Frame<'_>, d: &DashData, area: Rect, focused: bool) {
    let t = &d.traces;
    let mut lines = Vec::new();
    if !t.enabled {
        lines.push(Line::raw("no sink answers: completeness is off"));
    } else if let Some(p) = t.percent() {
        let color = if t.complete == t.checked {
            Color::Green
        } else {
            Color::Red
        };
        lines.push(Line::styled(
            format!("{p:.3}% complete"),
            Style::default().fg(color).add_modifier(Modifier::BOLD),
        ));
        lines.push(Line::raw(format!(
            "{} of {} {}",
            t.complete, t.checked, d.traces_scope
        )));
        if t.missing > 0 {
            lines.push(Line::raw(format!("{} never arrived", t.missing)));
        }
        for (k, v) in t
            .defects
            .iter()
            .filter(|(k, _)| k.as_str() != "missing_trace")
        {
            lines.push(Line::raw(format!("{v} with {k}")));
        }
    } else {
        lines.push(Line::raw("waiting for traces to settle"));
    }
    if let Some(e) = &t.error {
        lines.push(Line::styled(e.clone(), Style::default().fg(Color::Red)));
    }
    f.render_widget(
        Paragraph::new(lines).block(block("Trace completeness", focused)),
        area,
    );
}

fn draw_endpoints(f: &mut Frame<'_>, d: &DashData, area: Rect, focused: bool) {
    let rows = d.endpoints.iter().map(|e| {
        let style = if e.failures > 0 {
            Style::default().fg(Color::Red)
        } else {
            Style::default()
        };
        Row::new(vec![
            e.name.clone(),
            e.requests.to_string(),
            format!("{:.1}", e.p50_ms),
            format!("{:.1}", e.p99_ms),
            e.errors.clone(),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Min(34),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Min(8),
    ];
    let header = Row::new(vec!["endpoint", "requests", "p50 ms", "p99 ms", "errors"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block("Endpoints", focused)),
        area,
    );
}

fn draw_components(f: &mut Frame<'_>, d: &DashData, area: Rect, focused: bool) {
    let rows = d.components.iter().map(|c| {
        let color = match c.health {
            "healthy" => Color::Green,
            "starting" | "-" => Color::Yellow,
            _ => Color::Red,
        };
        Row::new(vec![
            c.name.clone(),
            c.health.to_owned(),
            c.restarts.map_or("-".into(), |r| r.to_string()),
            c.cpu_seconds.map_or("-".into(), |s| format!("{s:.0}s")),
            fmt_bytes(c.memory_bytes),
        ])
        .style(Style::default().fg(color))
    });
    let widths = [
        Constraint::Min(10),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(8),
    ];
    let header = Row::new(vec!["component", "health", "restarts", "cpu", "memory"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let mut b = block("Components", focused);
    if let Some(n) = &d.components_note {
        b = b.title_bottom(n.clone());
    }
    f.render_widget(Table::new(rows, widths).header(header).block(b), area);
}

/// Whether the user asked for no colour (<https://no-color.org>: `NO_COLOR` set and
/// not empty).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Removes every colour from a drawn frame; bold and other modifiers stay, so the
/// focused panel is still marked.
pub fn strip_colors(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        cell.set_fg(Color::Reset);
        cell.set_bg(Color::Reset);
    }
}

/// What a key press asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    Quit,
    TogglePause,
    Focus(Panel),
    None,
}

pub fn on_key(code: KeyCode, mods: KeyModifiers, focus: Panel) -> KeyAction {
    match code {
        KeyCode::Char('q') | KeyCode::Esc => KeyAction::Quit,
        // Raw mode turns Ctrl-C into a key press.
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => KeyAction::Quit,
        KeyCode::Char('p') | KeyCode::Char(' ') => KeyAction::TogglePause,
        KeyCode::Left | KeyCode::Right | KeyCode::Up | KeyCode::Down => {
            KeyAction::Focus(focus.moved(code))
        }
        _ => KeyAction::None,
    }
}

/// Runs the screen on its own thread until `done`; `frame` makes each frame's data and
/// `key` handles a key press (returns true to stop the screen).
pub fn screen_thread(
    done: Arc<AtomicBool>,
    frame: impl Fn() -> DashData + Send + 'static,
    key: impl Fn(KeyAction) -> bool + Send + 'static,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    let no_color = no_color();
    std::thread::spawn(move || {
        let mut terminal = ratatui::init();
        let mut focus = Panel::Traffic;
        let result = (|| {
            while !done.load(Ordering::Relaxed) {
                let data = frame();
                terminal.draw(|f| {
                    draw(f, &data, focus);
                    if no_color {
                        strip_colors(f.buffer_mut());
                    }
                })?;
                if event::poll(Duration::from_millis(500))?
                    && let Event::Key(k) = event::read()?
                    && k.kind == KeyEventKind::Press
                {
                    match on_key(k.code, k.modifiers, focus) {
                        KeyAction::Focus(p) => focus = p,
                        KeyAction::None => {}
                        a => {
                            if key(a) {
                                break;
                            }
                        }
                    }
                }
            }
            Ok(())
        })();
        ratatui::restore();
        result
    })
}

/// `socialctl top` on a terminal: the same screen, watching the stack and the sink.
pub async fn run_top(data: impl Fn() -> DashData + Send + 'static) -> anyhow::Result<()> {
    let done = Arc::new(AtomicBool::new(false));
    let quit = Arc::new(AtomicBool::new(false));
    let q = quit.clone();
    let screen = screen_thread(done, data, move |a| {
        if a == KeyAction::Quit {
            q.store(true, Ordering::Relaxed);
            true
        } else {
            false
        }
    });
    match tokio::task::spawn_blocking(move || screen.join()).await {
        Ok(Ok(r)) => r.map_err(Into::into),
        _ => anyhow::bail!("the screen thread stopped unexpectedly"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn data() -> DashData {
        DashData {
            title: "socialctl load".into(),
            subtitle: "12s / 60s · users 500/500 · closed model · 30512 requests".into(),
            rate_label: "req/s".into(),
            rate: vec![100, 800, 2400, 2500, 2450],
            p99_ms: vec![3, 9, 25, 24, 30],
            rate_now: 2450.0,
            p50_now_ms: 3.2,
            p99_now_ms: 30.0,
            endpoints: vec![
                EndpointLine {
                    name: "GET /api/feed/timeline".into(),
                    requests: 15000,
                    failures: 0,
                    errors: String::new(),
                    p50_ms: 3.1,
                    p99_ms: 28.4,
                },
                EndpointLine {
                    name: "PUT /api/feed/posts/{id}/like".into(),
                    requests: 3000,
                    failures: 2,
                    errors: "503×2".into(),
                    p50_ms: 4.0,
                    p99_ms: 40.0,
                },
            ],
            components: vec![InstanceStatus {
                name: "feed".into(),
                state: "running",
                health: "healthy",
                pid: None,
                uptime_secs: Some(100),
                memory_bytes: Some(30 << 20),
                cpu_seconds: Some(12.0),
                restarts: Some(0),
            }],
            components_note: Some(" docker runtime ".into()),
            traces: LiveState {
                checked: 2000,
                complete: 1999,
                missing: 1,
                defects: [("missing_trace".to_owned(), 1)].into_iter().collect(),
                endpoints: Vec::new(),
                p99_history: Vec::new(),
                error: None,
                enabled: true,
            },
            traces_scope: "requests checked".into(),
            paused: false,
            can_pause: true,
        }
    }

    /// The frame as text, and its cells (for styles).
    fn render(d: &DashData, focus: Panel) -> (String, ratatui::buffer::Buffer) {
        let mut t = Terminal::new(TestBackend::new(120, 24)).unwrap();
        t.draw(|f| draw(f, d, focus)).unwrap();
        let buf = t.backend().buffer().clone();
        let text = (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n");
        (text, buf)
    }

    #[test]
    fn a_frame_shows_every_panel_with_its_data() {
        let (screen, _) = render(&data(), Panel::Traffic);
        for needle in [
            "socialctl load",
            "users 500/500",
            "req/s now 2450.0",
            "latency p50 3.2 ms · p99 30.0 ms",
            "99.950% complete",
            "1999 of 2000 requests checked",
            "1 never arrived",
            "GET /api/feed/timeline",
            "PUT /api/feed/posts/{id}/like",
            "503×2",
            "feed",
            "healthy",
            "30 MiB",
            "docker runtime",
            "p pause · q quit",
        ] {
            assert!(screen.contains(needle), "missing {needle:?} in\n{screen}");
        }
        assert!(!screen.contains("PAUSED"));
    }

    #[test]
    fn no_color_leaves_no_colour_but_keeps_the_focus_bold() {
        let (_, mut buf) = render(&data(), Panel::Components);
        assert!(buf.content.iter().any(|c| c.fg != Color::Reset));
        strip_colors(&mut buf);
        assert!(
            buf.content
                .iter()
                .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
        );
        assert!(
            buf.content
                .iter()
                .any(|c| c.modifier.contains(Modifier::BOLD))
        );
    }

    #[test]
    fn focus_and_pause_change_the_frame() {
        let mut d = data();
        d.paused = true;
        let (screen, buf) = render(&d, Panel::Components);
        assert!(screen.contains("PAUSED"));
        assert!(screen.contains("p resume"));
        // The focused panel's border is highlighted, the others are not.
        let comp_x = (0..120u16)
            .find(|x| buf[(*x, 10)].symbol() == "┌" && *x > 60)
            .expect("components panel corner");
        assert_eq!(buf[(comp_x, 10)].fg, Color::Yellow);
        assert_ne!(buf[(0, 1)].fg, Color::Yellow);
    }

    #[test]
    fn keys_move_focus_pause_and_quit() {
        let none = KeyModifiers::NONE;
        assert_eq!(
            on_key(KeyCode::Char('q'), none, Panel::Traffic),
            KeyAction::Quit
        );
        assert_eq!(
            on_key(KeyCode::Char('c'), KeyModifiers::CONTROL, Panel::Traffic),
            KeyAction::Quit
        );
        assert_eq!(
            on_key(KeyCode::Char('p'), none, Panel::Traffic),
            KeyAction::TogglePause
        );
        let mut p = Panel::Traffic;
        for (k, want) in [
            (KeyCode::Right, Panel::Traces),
            (KeyCode::Down, Panel::Components),
            (KeyCode::Left, Panel::Endpoints),
            (KeyCode::Up, Panel::Traffic),
        ] {
            match on_key(k, none, p) {
                KeyAction::Focus(n) => p = n,
                a => panic!("{a:?}"),
            }
            assert_eq!(p, want);
        }
    }

    #[test]
    fn top_without_a_sink_says_so_and_offers_no_pause() {
        let mut d = data();
        d.can_pause = false;
        d.traces = LiveState::default();
        let (screen, _) = render(&d, Panel::Traffic);
        assert!(screen.contains("no sink answers"));
        assert!(!screen.contains("p pause"));
    }
}
