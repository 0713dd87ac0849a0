//! The component table: every part of the stack as one entry (name, role, ports,
//! replicas, dependencies, gateway route, environment, probe, data, launch recipe), and
//! the settings a user can change. It is the single source of truth: the runtimes
//! (`runtime/`), the Compose renderer (`render/`), the gateway config (`gateway.rs`) and
//! the test harnesses only translate entries.
//!
//! **A new service is one crate under `services/` and one entry in [`COMPONENTS`].**

pub mod faults;
pub mod gateway;
pub mod official;
mod plan;
pub mod recipe;
pub mod secrets;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};

pub use official::ImageMode;
pub use plan::{Instance, ProxyLink, Stack, instance_name};

/// What a component is: decides its launch recipe (`recipe.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Postgres,
    Redis,
    /// socialctl's own OTLP receiver and span store.
    Sink,
    /// A Rust service from `services/`, run as `socialnet <name>`.
    Service,
    /// A Rust service whose interface is pages, not a JSON API (the web frontend): run
    /// like a service, but not fuzzed against an OpenAPI document.
    Frontend,
    /// NGINX in front of the services.
    Gateway,
    /// The S3-compatible object store (`socialnet objects`: s3s-fs), media's storage.
    ObjectStore,
    /// The OpenTelemetry Collector (contrib), official-image mode only: receives the
    /// services' spans and exports them to Jaeger and to the sink.
    Collector,
    /// Jaeger (all-in-one), official-image mode only: the trace UI.
    Jaeger,
    /// The fault-injecting TCP proxy (`socialnet chaosproxy`), with `--fault-proxy`
    /// only: a link on every path network faults can target (see [`Stack::links`]).
    FaultProxy,
    /// Any other program, started with the entry's own command line (see [`Launch`]).
    Program,
}

/// One port a component listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Port {
    /// `http`, `grpc`, `sql`, …; the first port of an entry is its main one.
    pub name: &'static str,
    /// The port inside the Docker network (and the one the program is told to use there).
    pub inner: u16,
    /// The default port on 127.0.0.1: where the local runtime listens, and where Docker
    /// publishes it (when the entry is published).
    pub host: u16,
}

/// One gateway location of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Route {
    /// The path prefix NGINX routes (`location <path>`).
    pub path: &'static str,
    /// Whether the gateway caches its responses, CDN-style (immutable files): a shared
    /// cache in front of the service, its status in `X-Cache-Status` and in the
    /// gateway's log line.
    pub cached: bool,
}

/// A route passed straight through.
pub const fn route(path: &'static str) -> Route {
    Route {
        path,
        cached: false,
    }
}

/// A route the gateway caches.
pub const fn cached_route(path: &'static str) -> Route {
    Route { path, cached: true }
}

/// How socialctl decides a component is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Probe {
    /// Running is all that can be checked (images with no way in).
    Running,
    /// The main port accepts a TCP connection.
    Tcp,
    /// A PostgreSQL connection succeeds (a listening port is not enough: it refuses
    /// clients while it starts up).
    Postgres,
    /// `GET` of this path on the main port answers 2xx.
    Http(&'static str),
}

/// How a component is launched; `recipe.rs` turns it into a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Launch {
    /// The role's own recipe (PostgreSQL, Redis, NGINX, the sink, a service).
    Recipe,
    /// An explicit program and arguments; `{port}`, `{bind}` and `{name}` are filled in.
    Command {
        program: &'static str,
        args: &'static [&'static str],
    },
}

/// Which image modes a component belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Presence {
    Always,
    /// Only with `--images official` (the Collector and Jaeger).
    OfficialOnly,
    /// Only with `--fault-proxy` (the chaos proxy).
    FaultProxy,
}

/// One entry of the table.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Component {
    pub name: &'static str,
    pub role: Role,
    /// Its ports; the first is the main one (probed, routed to, used by others).
    pub ports: &'static [Port],
    /// Whether `--scale NAME=N` may run several replicas (replica `r` listens on the
    /// host port plus `100 × r` on loopback).
    pub scalable: bool,
    /// Components that must be healthy first. [`OTLP_RECEIVER`] names whichever
    /// receives the services' spans (the sink, or the Collector with official images).
    pub depends_on: &'static [&'static str],
    /// Services it calls over HTTP (through the gateway), beyond auth's signing keys
    /// which every service fetches: the paths the fault proxy puts a link on.
    pub calls: &'static [&'static str],
    /// The gateway locations routed to it (services: their public path prefixes).
    pub routes: &'static [Route],
    /// The largest request body it accepts, in bytes: the gateway enforces it on the
    /// route and the service is told it (`SOCIALNET_MAX_BODY`), so both answer 413 alike.
    pub body_limit: Option<u32>,
    /// Extra environment; values may name other components in braces (`{auth}` is
    /// auth's `host:port` as this component reaches it), `{self}` for itself,
    /// `{public}` for the gateway as a browser reaches it, and `{workshop}` for whether
    /// the stack was started for a workshop.
    pub env: &'static [(&'static str, &'static str)],
    pub probe: Probe,
    /// Its data directory, kept across restarts (a Docker volume, or a directory in the
    /// state directory): the name and the path inside the container.
    pub data: Option<(&'static str, &'static str)>,
    /// Whether the Docker runtime publishes its ports on 127.0.0.1 (services are
    /// reached through the gateway only).
    pub publish: bool,
    pub presence: Presence,
    pub launch: Launch,
    /// The signal that stops it gracefully.
    pub stop_signal: Signal,
}

/// The body limit of the JSON APIs: 64 KiB.
pub const SERVICE_BODY_LIMIT: u32 = 64 * 1024;

/// The body limit of media's uploads: its largest video, 100 MiB (images are held to
/// 10 MiB by the service itself, which knows the kind from the first bytes).
pub const MEDIA_BODY_LIMIT: u32 = 100 * 1024 * 1024;

/// The largest batch of spans a browser may send through the gateway: 256 KiB.
pub const BROWSER_TELEMETRY_LIMIT: u32 = 256 * 1024;

/// Bodies past this size are streamed by the gateway to the service as they arrive
/// instead of being buffered first.
pub const STREAMED_BODY: u32 = 1024 * 1024;
/// The pages' largest form: a post with a 10 MiB image, and its text.
pub const WEB_BODY_LIMIT: u32 = 11 * 1024 * 1024;

/// The fault proxy's component name.
pub const FAULT_PROXY: &str = "chaosproxy";

/// A dependency name standing for the services' OTLP receiver.
pub const OTLP_RECEIVER: &str = "otlp";

const fn port(name: &'static str, inner: u16, host: u16) -> Port {
    Port { name, inner, host }
}

/// A Rust service entry: everything but its name, port, routes and extra environment is
/// the same for every service.
const fn service(
    name: &'static str,
    ports: &'static [Port],
    routes: &'static [Route],
    env: &'static [(&'static str, &'static str)],
) -> Component {
    Component {
        name,
        role: Role::Service,
        ports,
        scalable: true,
        depends_on: &["postgres", "redis", OTLP_RECEIVER],
        calls: &[],
        routes,
        body_limit: Some(SERVICE_BODY_LIMIT),
        env,
        probe: Probe::Http("/readyz"),
        data: None,
        publish: false,
        presence: Presence::Always,
        launch: Launch::Recipe,
        stop_signal: Signal::Term,
    }
}

/// Every component, in start order (a component comes after what it depends on).
pub const COMPONENTS: &[Component] = &[
    Component {
        name: "postgres",
        role: Role::Postgres,
        ports: &[port("sql", 5432, 15432)],
        scalable: false,
        depends_on: &[],
        calls: &[],
        routes: &[],
        body_limit: None,
        env: &[],
        probe: Probe::Postgres,
        data: Some(("pgdata", "/var/lib/postgresql/data")),
        publish: true,
        presence: Presence::Always,
        launch: Launch::Recipe,
        // SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
        stop_signal: Signal::Int,
    },
    Component {
        name: "redis",
        role: Role::Redis,
        ports: &[port("resp", 6379, 16379)],
        scalable: false,
        depends_on: &[],
        calls: &[],
        routes: &[],
        body_limit: None,
        env: &[],
        probe: Probe::Tcp,
        data: None,
        publish: true,
        presence: Presence::Always,
        launch: Launch::Recipe,
        stop_signal: Signal::Term,
    },
    // Its OTLP/HTTP endpoint is also the browsers' (`/v1/traces` through the gateway,
    // POST only, rate-limited: browsers are untrusted).
    Component {
        name: "sink",
        role: Role::Sink,
        ports: &[port("http", 4318, 4318), port("grpc", 4317, 4317)],
        scalable: false,
        depends_on: &[],
        calls: &[],
        routes: &[route("/v1/traces")],
        body_limit: Some(BROWSER_TELEMETRY_LIMIT),
        env: &[],
        probe: Probe::Http("/healthz"),
        data: None,
        publish: true,
        presence: Presence::Always,
        launch: Launch::Recipe,
        stop_signal: Signal::Term,
    },
    Component {
        name: "jaeger",
        role: Role::Jaeger,
        ports: &[port("ui", 16686, 16686)],
        scalable: false,
        depends_on: &[],
        calls: &[],
        routes: &[],
        body_limit: None,
        env: &[("COLLECTOR_OTLP_ENABLED", "true")],
        probe: Probe::Running,
        data: None,
        publish: true,
        presence: Presence::OfficialOnly,
        launch: Launch::Recipe,
        stop_signal: Signal::Term,
    },
    Component {
        name: "collector",
        role: Role::Collector,
        ports: &[port("http", 4318, 4318)],
        scalable: false,
        depends_on: &["sink", "jaeger"],
        calls: &[],
        routes: &[],
        body_limit: None,
        env: &[],
        probe: Probe::Running,
        data: None,
        publish: false,
        presence: Presence::OfficialOnly,
        launch: Launch::Recipe,
        stop_signal: Signal::Term,
    },
    // Before the services: they reach their neighbours through it when it runs.
    Component {
        name: "chaosproxy",
        role: Role::FaultProxy,
        ports: &[port("http", 8474, 8474)],
        scalable: false,
        depends_on: &[OTLP_RECEIVER],
        calls: &[],
        routes: &[],
        body_limit: None,
        env: &[],
        probe: Probe::Http("/healthz"),
        data: None,
        publish: true,
        presence: Presence::FaultProxy,
        launch: Launch::Recipe,
        stop_signal: Signal::Term,
    },
    // profile first: auth and feed call it.
    service(
        "profile",
        &[port("http", 8082, 8082)],
        &[route("/api/profiles")],
        &[],
    ),
    // auth creates a profile for each new account.
    Component {
        calls: &["profile"],
        ..service(
            "auth",
            &[port("http", 8081, 8081)],
            &[route("/api/auth/")],
            &[
                // The built-in identity provider's back channel, and whether it is offered.
                ("AUTH_SELF_URL", "http://{self}"),
                ("AUTH_DEV_IDP", "{workshop}"),
                // Every client of a workshop stack (browsers, curl, `socialctl load`'s
                // hundreds of users) reaches auth from one address, so the per-address login
                // limit is raised; the per-account limit still stops password guessing.
                ("AUTH_LOGIN_IP_LIMIT", "100000"),
                ("AUTH_REGISTER_IP_LIMIT", "1000"),
            ],
        )
    },
    // feed asks profile for the follow graph and media about a post's images.
    Component {
        calls: &["profile", "media"],
        ..service(
            "feed",
            &[port("http", 8083, 8083)],
            &[route("/api/feed/")],
            &[],
        )
    },
    service(
        "messaging",
        &[port("http", 8084, 8084)],
        &[route("/api/messages/")],
        &[],
    ),
    Component {
        name: "objects",
        role: Role::ObjectStore,
        ports: &[port("s3", 9000, 8090)],
        scalable: false,
        depends_on: &[],
        calls: &[],
        routes: &[],
        body_limit: None,
        env: &[("OBJECTS_BUCKETS", "media")],
        probe: Probe::Tcp,
        data: Some(("objects", "/var/lib/socialnet/objects")),
        publish: false,
        presence: Presence::Always,
        launch: Launch::Recipe,
        stop_signal: Signal::Term,
    },
    // Its API under /api/media, its files (originals, thumbnails) under /media/.
    Component {
        depends_on: &["postgres", "redis", "objects", OTLP_RECEIVER],
        calls: &[],
        body_limit: Some(MEDIA_BODY_LIMIT),
        ..service(
            "media",
            &[port("http", 8085, 8085)],
            &[route("/api/media"), cached_route("/media/")],
            &[
                ("MEDIA_S3_ENDPOINT", "http://{objects}"),
                ("MEDIA_S3_BUCKET", "media"),
                ("MEDIA_S3_ACCESS_KEY", secrets::OBJECTS_ACCESS_KEY),
                ("MEDIA_S3_SECRET_KEY", "{objects_secret}"),
                ("MEDIA_MAX_IMAGE_BYTES", "10485760"),
                ("MEDIA_MAX_VIDEO_BYTES", "104857600"),
            ],
        )
    },
    // The pages, at the gateway's root; they call the APIs through the gateway.
    Component {
        role: Role::Frontend,
        body_limit: Some(WEB_BODY_LIMIT),
        ..service(
            "web",
            &[port("http", 8086, 8086)],
            &[route("/")],
            &[("WEB_API_URL", "http://{gateway}")],
        )
    },
    Component {
        name: "gateway",
        role: Role::Gateway,
        ports: &[port("http", 8080, 8080)],
        scalable: false,
        depends_on: &[
            "auth",
            "profile",
            "feed",
            "messaging",
            "media",
            "web",
            "sink",
        ],
        calls: &[],
        routes: &[],
        body_limit: None,
        env: &[],
        probe: Probe::Http("/healthz"),
        data: None,
        publish: true,
        presence: Presence::Always,
        launch: Launch::Recipe,
        // QUIT lets NGINX finish in-flight requests and take its workers down with it.
        stop_signal: Signal::Quit,
    },
];

/// A signal a runtime can send to one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Signal {
    Term,
    Int,
    Quit,
    Kill,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Quit => "QUIT",
            Signal::Kill => "KILL",
        }
    }
}

/// Settings a user can change on the command line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StackConfig {
    /// Host ports moved from their defaults, by component (`gateway`) or by component
    /// and port name (`sink.grpc`).
    pub ports: BTreeMap<String, u16>,
    /// The first service's host port; every service's default moves with it.
    pub service_base_port: u16,
    pub scale: BTreeMap<String, u32>,
    /// Extra environment for every service.
    pub env: BTreeMap<String, String>,
    pub images: ImageMode,
    /// A throwaway stack (tests): PostgreSQL does not flush to disk.
    pub ephemeral: bool,
    /// Started for a workshop: auth offers the built-in identity provider, which signs
    /// anyone in as anyone (`{workshop}` in an entry's environment is `true`).
    pub workshop: bool,
    /// Run the fault-injecting proxy on every path between components, so that
    /// `socialctl chaos latency|loss|bandwidth|timeout|reset|partition` can act on them.
    #[serde(default)]
    pub fault_proxy: bool,
    /// Start only these components (none: all).
    pub only: BTreeSet<String>,
    /// Components served elsewhere (`host:port`), which this stack routes to instead of
    /// starting them.
    pub external: BTreeMap<String, String>,
    /// The project's PostgreSQL and Redis passwords (see [`secrets`]).
    #[serde(default)]
    pub secrets: secrets::Secrets,
}

/// The first service's default port (auth's).
pub const DEFAULT_SERVICE_BASE: u16 = 8081;

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            ports: BTreeMap::new(),
            service_base_port: DEFAULT_SERVICE_BASE,
            scale: BTreeMap::new(),
            env: BTreeMap::new(),
            images: ImageMode::Local,
            ephemeral: false,
            workshop: false,
            fault_proxy: false,
            only: BTreeSet::new(),
            external: BTreeMap::new(),
            secrets: secrets::Secrets::default(),
        }
    }
}

/// How components find each other: loopback ports (local runtime) or instance names on
/// the project network (Docker runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Net {
    Local,
    Docker,
}

/// `feed=3` → ("feed", 3). Which names may be scaled is checked against the table.
pub fn parse_scale(s: &str) -> Result<(String, u32), String> {
    let (name, n) = s
        .split_once('=')
        .ok_or_else(|| format!("expected SERVICE=N, got {s:?}"))?;
    let scalable = Stack::new(StackConfig::default()).scalable();
    if !scalable.contains(&name) {
        return Err(format!(
            "unknown service {name:?}; scalable services: {}",
            scalable.join(", ")
        ));
    }
    let n: u32 = n
        .parse()
        .map_err(|_| format!("replica count must be a number, got {n:?}"))?;
    if !(1..=9).contains(&n) {
        return Err("replica count must be 1 to 9".into());
    }
    Ok((name.to_owned(), n))
}

/// `KEY=VALUE` → (KEY, VALUE).
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    if k.is_empty() {
        return Err("the variable name is empty".into());
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// `feed=127.0.0.1:9000` → ("feed", "127.0.0.1:9000").
pub fn parse_external(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected COMPONENT=HOST:PORT, got {s:?}"))?;
    match v.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
            Ok((k.to_owned(), v.to_owned()))
        }
        _ => Err(format!("expected HOST:PORT after {k}=, got {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_env_and_external_flags_parse_or_explain() {
        assert_eq!(parse_scale("feed=3"), Ok(("feed".into(), 3)));
        assert!(
            parse_scale("nginx=2")
                .unwrap_err()
                .contains("unknown service")
        );
        assert!(parse_scale("feed=0").is_err());
        assert!(parse_scale("feed").is_err());
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("=x").is_err());
        assert_eq!(
            parse_external("feed=127.0.0.1:9000"),
            Ok(("feed".into(), "127.0.0.1:9000".into()))
        );
        assert!(parse_external("feed=127.0.0.1").is_err());
    }
}
