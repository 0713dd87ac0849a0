//! The phone population as data: `sim/*.profile` files, read by `socialctl sim`.
//!
//! Same conventions as the workload files: one declaration per line, `keyword value
//! [key=value ...]`, `#` comments, and errors that name the line. `sim/phones.profile`
//! documents every keyword.

use std::time::Duration;

use crate::workload::{ParseError, TimeRange, parse_duration, parse_range};

/// A phone's operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Os {
    Android,
    Ios,
}

impl Os {
    /// `os.name`.
    pub fn name(self) -> &'static str {
        match self {
            Os::Android => "Android",
            Os::Ios => "iOS",
        }
    }

    /// `os.type` (the semantic conventions' kernel families).
    pub fn os_type(self) -> &'static str {
        match self {
            Os::Android => "linux",
            Os::Ios => "darwin",
        }
    }

    fn parse(s: &str) -> Option<Os> {
        match s {
            "android" => Some(Os::Android),
            "ios" => Some(Os::Ios),
            _ => None,
        }
    }
}

/// One phone model of the mix.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceModel {
    pub weight: u32,
    pub manufacturer: String,
    /// `device.model.identifier` (e.g. `SM-S911B`, `iPhone15,2`).
    pub identifier: String,
    pub os: Os,
    pub os_version: String,
    /// `device.model.name` (e.g. `Galaxy S23`).
    pub name: String,
}

/// The app a platform runs.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub os: Os,
    pub name: String,
    pub version: String,
}

/// A kind of network and how it behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// `network.connection.type`: `wifi`, `cell`.
    pub kind: String,
    /// `network.connection.subtype`: `lte`, `nr`, … (cell only).
    pub subtype: Option<String>,
    pub weight: u32,
    /// One way.
    pub latency: TimeRange,
    /// How long the app waits for an answer.
    pub timeout: Duration,
    /// Share of connection attempts that fail.
    pub fail: f64,
}

impl Network {
    /// `wifi`, `cell:lte`: its name in reports.
    pub fn label(&self) -> String {
        match &self.subtype {
            Some(s) => format!("{}:{s}", self.kind),
            None => self.kind.clone(),
        }
    }
}

/// What a user looks at: a screen, the root span of what it makes the app do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Screen {
    Timeline,
    PostDetail,
    Profile,
    Like,
    Comment,
    Compose,
    /// A photo post: upload, wait for media to process it, post it.
    Photo,
    Message,
}

impl Screen {
    pub const ALL: [Screen; 8] = [
        Screen::Timeline,
        Screen::PostDetail,
        Screen::Profile,
        Screen::Like,
        Screen::Comment,
        Screen::Compose,
        Screen::Photo,
        Screen::Message,
    ];

    /// Its name in the profile file.
    pub fn key(self) -> &'static str {
        match self {
            Screen::Timeline => "timeline",
            Screen::PostDetail => "post-detail",
            Screen::Profile => "profile",
            Screen::Like => "like",
            Screen::Comment => "comment",
            Screen::Compose => "compose",
            Screen::Photo => "photo",
            Screen::Message => "message",
        }
    }

    /// The user-visible operation: its root span's name.
    pub fn operation(self) -> &'static str {
        match self {
            Screen::Timeline => "open timeline",
            Screen::PostDetail => "view post",
            Screen::Profile => "view profile",
            Screen::Like => "like post",
            Screen::Comment => "send comment",
            Screen::Compose => "send post",
            Screen::Photo => "send photo",
            Screen::Message => "send message",
        }
    }
}

/// A whole profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub users: usize,
    pub password: String,
    pub devices: Vec<DeviceModel>,
    pub apps: Vec<App>,
    pub networks: Vec<Network>,
    pub think: TimeRange,
    pub pages: (u32, u32),
    pub background_every: TimeRange,
    pub background_for: TimeRange,
    /// The session id rotates after this long in the background…
    pub session_background: Duration,
    /// …or after this long at most.
    pub session_max: Duration,
    pub offline_share: f64,
    pub offline_every: TimeRange,
    pub offline_for: TimeRange,
    /// Spans a phone keeps while it cannot upload; the oldest go first.
    pub buffer_spans: usize,
    pub upload_every: Duration,
    pub skew_share: f64,
    /// Clock offsets, in seconds (negative: slow).
    pub skew_offset: (f64, f64),
    pub bad_share: f64,
    pub screens: Vec<(Screen, u32)>,
    /// A day compressed into this long (`day length=10m`): activity follows the hours,
    /// quiet at night, busiest in the evening. `None`: the same all run.
    pub day: Option<Duration>,
}

impl Profile {
    /// How active the population is at `t` into the run, 0.1 to 1 (1 without a day):
    /// the run starts at 06:00, peaks at 20:00, and is quietest at 04:00.
    pub fn activity(&self, t: Duration) -> f64 {
        let Some(day) = self.day else { return 1.0 };
        let hour = (6.0 + 24.0 * t.as_secs_f64() / day.as_secs_f64().max(1e-9)) % 24.0;
        // A cosine from its trough at 04:00 to its peak 16 hours later, back by 04:00.
        let phase = if (4.0..20.0).contains(&hour) {
            (hour - 4.0) / 16.0 * std::f64::consts::PI
        } else {
            let h = if hour < 4.0 { hour + 24.0 } else { hour };
            std::f64::consts::PI + (h - 20.0) / 8.0 * std::f64::consts::PI
        };
        0.1 + 0.9 * (1.0 - phase.cos()) / 2.0
    }
}

/// The built-in profile.
pub const PHONES: &str = include_str!("../sim/phones.profile");

impl Profile {
    pub fn phones() -> Profile {
        Profile::parse(PHONES).expect("the built-in profile parses")
    }

    /// The app of `os`.
    pub fn app(&self, os: Os) -> Option<&App> {
        self.apps.iter().find(|a| a.os == os)
    }

    pub fn parse(text: &str) -> Result<Profile, ParseError> {
        let mut p = Profile {
            users: 300,
            password: "password123".into(),
            devices: Vec::new(),
            apps: Vec::new(),
            networks: Vec::new(),
            think: TimeRange {
                min: Duration::from_secs(1),
                max: Duration::from_secs(4),
            },
            pages: (1, 3),
            background_every: TimeRange {
                min: Duration::from_secs(20),
                max: Duration::from_secs(60),
            },
            background_for: TimeRange {
                min: Duration::from_secs(2),
                max: Duration::from_secs(20),
            },
            session_background: Duration::from_secs(15 * 60),
            session_max: Duration::from_secs(4 * 3600),
            offline_share: 0.0,
            offline_every: TimeRange::ZERO,
            offline_for: TimeRange::ZERO,
            buffer_spans: 300,
            upload_every: Duration::from_secs(5),
            skew_share: 0.0,
            skew_offset: (0.0, 0.0),
            bad_share: 0.0,
            screens: Vec::new(),
            day: None,
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| ParseError { line, message };
            let text = raw.split('#').next().unwrap_or("").trim();
            if text.is_empty() {
                continue;
            }
            let words: Vec<&str> = text.split_whitespace().collect();
            let (keyword, rest) = (words[0], &words[1..]);
            let opts = |allowed: &[&str]| -> Result<Vec<(String, String)>, ParseError> {
                rest.iter()
                    .filter(|w| w.contains('='))
                    .map(|w| {
                        let (k, v) = w.split_once('=').expect("has =");
                        if allowed.contains(&k) {
                            Ok((k.to_owned(), v.to_owned()))
                        } else {
                            Err(err(format!(
                                "{keyword}: unknown option {k:?}; options: {}",
                                allowed.join(", ")
                            )))
                        }
                    })
                    .collect()
            };
            let range = |v: &str| parse_range(v).map_err(err);
            let dur = |v: &str| parse_duration(v).map_err(err);
            let share = |v: &str| parse_share(v).map_err(err);
            match keyword {
                "population" => {
                    for (k, v) in opts(&["users", "password"])? {
                        match k.as_str() {
                            "users" => {
                                p.users = v
                                    .parse()
                                    .ok()
                                    .filter(|n| *n >= 1)
                                    .ok_or_else(|| err(format!("users={v}: a number from 1")))?
                            }
                            _ => p.password = v,
                        }
                    }
                }
                "device" => {
                    if rest.len() < 6 {
                        return Err(err(
                            "device WEIGHT MANUFACTURER IDENTIFIER OS VERSION MODEL NAME".into(),
                        ));
                    }
                    p.devices.push(DeviceModel {
                        weight: weight(rest[0]).map_err(err)?,
                        manufacturer: rest[1].into(),
                        identifier: rest[2].into(),
                        os: Os::parse(rest[3])
                            .ok_or_else(|| err(format!("os {:?}: android or ios", rest[3])))?,
                        os_version: rest[4].into(),
                        name: rest[5..].join(" "),
                    });
                }
                "app" => {
                    let os = rest
                        .first()
                        .and_then(|o| Os::parse(o))
                        .ok_or_else(|| err("app android|ios name=N version=V".into()))?;
                    let o = opts(&["name", "version"])?;
                    let get = |k: &str| o.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
                    p.apps.push(App {
                        os,
                        name: get("name").ok_or_else(|| err("app: name= is missing".into()))?,
                        version: get("version")
                            .ok_or_else(|| err("app: version= is missing".into()))?,
                    });
                }
                "network" => {
                    let label = rest
                        .first()
                        .filter(|l| !l.contains('='))
                        .ok_or_else(|| err("network wifi|cell:SUBTYPE weight=N …".into()))?;
                    let (kind, subtype) = match label.split_once(':') {
                        Some((k, s)) => (k.to_owned(), Some(s.to_owned())),
                        None => ((*label).to_owned(), None),
                    };
                    let mut n = Network {
                        kind,
                        subtype,
                        weight: 1,
                        latency: TimeRange::ZERO,
                        timeout: Duration::from_secs(10),
                        fail: 0.0,
                    };
                    for (k, v) in opts(&["weight", "latency", "timeout", "fail"])? {
                        match k.as_str() {
                            "weight" => n.weight = weight(&v).map_err(err)?,
                            "latency" => n.latency = range(&v)?,
                            "timeout" => n.timeout = dur(&v)?,
                            _ => n.fail = share(&v)?,
                        }
                    }
                    p.networks.push(n);
                }
                "think" => p.think = range(rest.first().copied().unwrap_or(""))?,
                "pages" => {
                    let r = rest.first().copied().unwrap_or("");
                    let (lo, hi) = r.split_once("..").unwrap_or((r, r));
                    p.pages = match (lo.parse(), hi.parse()) {
                        (Ok(a), Ok(b)) if a >= 1 && a <= b => (a, b),
                        _ => return Err(err(format!("pages {r:?}: write 1..3"))),
                    };
                }
                "background" => {
                    for (k, v) in opts(&["every", "for"])? {
                        match k.as_str() {
                            "every" => p.background_every = range(&v)?,
                            _ => p.background_for = range(&v)?,
                        }
                    }
                }
                "session" => {
                    for (k, v) in opts(&["background", "max"])? {
                        match k.as_str() {
                            "background" => p.session_background = dur(&v)?,
                            _ => p.session_max = dur(&v)?,
                        }
                    }
                }
                "offline" => {
                    for (k, v) in opts(&["share", "every", "for"])? {
                        match k.as_str() {
                            "share" => p.offline_share = share(&v)?,
                            "every" => p.offline_every = range(&v)?,
                            _ => p.offline_for = range(&v)?,
                        }
                    }
                }
                "buffer" => {
                    for (k, v) in opts(&["spans", "upload-every"])? {
                        match k.as_str() {
                            "spans" => {
                                p.buffer_spans = v
                                    .parse()
                                    .ok()
                                    .filter(|n| *n >= 1)
                                    .ok_or_else(|| err(format!("spans={v}: a number from 1")))?
                            }
                            _ => p.upload_every = dur(&v)?,
                        }
                    }
                }
                "skew" => {
                    for (k, v) in opts(&["share", "offset"])? {
                        match k.as_str() {
                            "share" => p.skew_share = share(&v)?,
                            _ => p.skew_offset = signed_range(&v).map_err(err)?,
                        }
                    }
                }
                "day" => {
                    for (_, v) in opts(&["length"])? {
                        let d = dur(&v)?;
                        if d.is_zero() {
                            return Err(err("day length=0: give a time, e.g. 10m".into()));
                        }
                        p.day = Some(d);
                    }
                }
                "bad" => {
                    for (_, v) in opts(&["share"])? {
                        p.bad_share = share(&v)?;
                    }
                }
                "screen" => {
                    let s = rest
                        .first()
                        .and_then(|k| Screen::ALL.into_iter().find(|s| s.key() == *k))
                        .ok_or_else(|| {
                            err(format!(
                                "screen {:?}: one of {}",
                                rest.first().unwrap_or(&""),
                                Screen::ALL.map(|s| s.key()).join(", ")
                            ))
                        })?;
                    let w = weight(rest.get(1).copied().unwrap_or("")).map_err(err)?;
                    p.screens.push((s, w));
                }
                other => return Err(err(format!("unknown keyword {other:?}"))),
            }
        }
        let whole = |m: &str| ParseError {
            line: 0,
            message: m.to_owned(),
        };
        if p.devices.is_empty() {
            return Err(whole("the profile has no `device` line"));
        }
        if p.networks.is_empty() {
            return Err(whole("the profile has no `network` line"));
        }
        if p.screens.is_empty() {
            return Err(whole("the profile has no `screen` line"));
        }
        for d in &p.devices {
            if p.app(d.os).is_none() {
                return Err(whole(&format!(
                    "devices run {} but no `app {}` line names its app",
                    d.os.name(),
                    match d.os {
                        Os::Android => "android",
                        Os::Ios => "ios",
                    }
                )));
            }
        }
        Ok(p)
    }
}

fn weight(s: &str) -> Result<u32, String> {
    s.parse()
        .ok()
        .filter(|w| *w >= 1)
        .ok_or_else(|| format!("weight {s:?}: a whole number from 1"))
}

/// `5%` → 0.05.
fn parse_share(s: &str) -> Result<f64, String> {
    s.strip_suffix('%')
        .and_then(|p| p.parse::<f64>().ok())
        .filter(|p| (0.0..=100.0).contains(p))
        .map(|p| p / 100.0)
        .ok_or_else(|| format!("{s:?}: a percentage from 0% to 100%"))
}

/// `-3m..3m` → (-180.0, 180.0) seconds.
fn signed_range(s: &str) -> Result<(f64, f64), String> {
    let one = |v: &str| -> Result<f64, String> {
        match v.strip_prefix('-') {
            Some(rest) => parse_duration(rest).map(|d| -d.as_secs_f64()),
            None => parse_duration(v).map(|d| d.as_secs_f64()),
        }
    };
    let (lo, hi) = s.split_once("..").unwrap_or((s, s));
    let (lo, hi) = (one(lo)?, one(hi)?);
    if lo > hi {
        return Err(format!("range {s:?} runs backwards"));
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_profile_reads_as_written() {
        let p = Profile::phones();
        assert_eq!(p.devices.len(), 6);
        assert_eq!(p.devices[0].name, "Pixel 8");
        assert_eq!(p.devices[4].identifier, "iPhone15,2");
        assert_eq!(p.app(Os::Ios).unwrap().name, "socialnet-ios");
        assert_eq!(p.networks[1].label(), "cell:lte");
        assert_eq!(p.networks[1].fail, 0.02);
        assert_eq!(p.skew_offset, (-180.0, 180.0));
        assert_eq!(p.session_background, Duration::from_secs(900));
        assert_eq!(p.buffer_spans, 300);
        assert!(p.screens.iter().any(|(s, _)| *s == Screen::Message));
        assert_eq!(p.activity(Duration::from_secs(5)), 1.0, "no day: flat");
        let day =
            Profile::parse(&PHONES.replace("bad        share=3%", "bad share=3%\nday length=24m"))
                .unwrap();
        // One minute is an hour; the run starts at 06:00.
        let at = |hour: f64| {
            day.activity(Duration::from_secs_f64(
                (hour - 6.0).rem_euclid(24.0) * 60.0,
            ))
        };
        assert!((at(20.0) - 1.0).abs() < 1e-9, "busiest at 20:00");
        assert!((at(4.0) - 0.1).abs() < 1e-9, "quietest at 04:00");
        assert!(at(12.0) > at(8.0) && at(23.0) < at(20.0) && at(2.0) < at(23.0));
    }

    #[test]
    fn mistakes_name_their_line() {
        for (edit, line, words) in [
            (
                ("device  12      Samsung", "device  x      Samsung"),
                13,
                "weight",
            ),
            (("fail=2%", "fail=2"), 25, "percentage"),
            (("offset=-3m..3m", "offset=3m..-3m"), 43, "backwards"),
            (
                ("screen  like         10", "screen  liked        10"),
                57,
                "one of",
            ),
            (
                ("buffer     spans=300", "buffer     span=300"),
                40,
                "unknown option",
            ),
        ] {
            let text = PHONES.replace(edit.0, edit.1);
            assert_ne!(text, PHONES, "{edit:?} edits the file");
            let e = Profile::parse(&text).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.contains(words), "{e}");
        }
    }
}
