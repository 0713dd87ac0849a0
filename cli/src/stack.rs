//! The stack definition: every component, how it starts, what it needs, how its health
//! is checked. It is the single source of truth the runtimes boot from.

use std::collections::BTreeMap;

/// What a component is, which decides how a runtime starts and probes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Postgres,
    Redis,
    /// socialctl's own OTLP receiver and span store.
    Sink,
    /// One of the Rust services.
    Service,
    /// NGINX in front of the services.
    Gateway,
    /// The OpenTelemetry Collector (contrib), official-image mode only: receives the
    /// services' spans and exports them to Jaeger and to the sink.
    Collector,
    /// Jaeger (all-in-one), official-image mode only: the trace UI.
    Jaeger,
}

/// Where the infrastructure images come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageMode {
    /// Everything from images socialctl builds (debootstrap base): no registry needed.
    #[default]
    Local,
    /// Official images, pinned by version, plus the Collector and Jaeger; only the
    /// services' image is built locally.
    Official,
}

/// The official images of official-image mode, pinned (never `latest`).
pub const POSTGRES_IMAGE: &str = "postgres:16.4-bookworm";
pub const REDIS_IMAGE: &str = "redis:7.4.1-bookworm";
pub const NGINX_IMAGE: &str = "nginx:1.27.3-bookworm";
pub const COLLECTOR_IMAGE: &str = "otel/opentelemetry-collector-contrib:0.114.0";
pub const JAEGER_IMAGE: &str = "jaegertracing/all-in-one:1.62.0";
/// Base of the services' image in official-image mode (instead of the debootstrap one).
pub const DEBIAN_IMAGE: &str = "debian:bookworm-20241111-slim";
pub const OFFICIAL_IMAGES: &[&str] = &[
    POSTGRES_IMAGE,
    REDIS_IMAGE,
    NGINX_IMAGE,
    COLLECTOR_IMAGE,
    JAEGER_IMAGE,
    DEBIAN_IMAGE,
];

/// The Collector's configuration in official-image mode: OTLP in, batched, out to
/// Jaeger (OTLP/gRPC) and to socialctl's sink (OTLP/HTTP), so `verify-traces` and the
/// Jaeger UI see the same spans.
pub const COLLECTOR_CONFIG: &str = "\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  batch:
    timeout: 500ms
exporters:
  otlp/jaeger:
    endpoint: jaeger:4317
    tls:
      insecure: true
  otlphttp/sink:
    endpoint: http://sink:4318
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp/jaeger, otlphttp/sink]
";

/// One component (a service may run several replicas).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Component {
    pub name: &'static str,
    pub role: Role,
    /// The port its first replica listens on.
    pub port: u16,
    pub replicas: u32,
    pub depends_on: &'static [&'static str],
}

/// Settings a user can change on the command line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StackConfig {
    pub gateway_port: u16,
    pub postgres_port: u16,
    pub redis_port: u16,
    pub otlp_grpc_port: u16,
    pub otlp_http_port: u16,
    /// auth listens here, profile on the next port, feed on the one after; replica `r`
    /// of a service adds `100 * r`.
    pub service_base_port: u16,
    pub scale: BTreeMap<String, u32>,
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub images: ImageMode,
    /// Jaeger's UI on 127.0.0.1 (official-image mode).
    #[serde(default = "default_jaeger_ui_port")]
    pub jaeger_ui_port: u16,
}

fn default_jaeger_ui_port() -> u16 {
    16686
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            gateway_port: 8080,
            postgres_port: 15432,
            redis_port: 16379,
            otlp_grpc_port: 4317,
            otlp_http_port: 4318,
            service_base_port: 8081,
            scale: BTreeMap::new(),
            env: BTreeMap::new(),
            images: ImageMode::Local,
            jaeger_ui_port: default_jaeger_ui_port(),
        }
    }
}

/// The services, in start order (profile before auth and feed, which call it).
pub const SERVICES: &[&str] = &["profile", "auth", "feed"];

/// Port of replica `r` of a service on loopback.
pub fn service_port(cfg: &StackConfig, name: &str, replica: u32) -> u16 {
    let offset = match name {
        "auth" => 0,
        "profile" => 1,
        _ => 2,
    };
    cfg.service_base_port + offset + 100 * replica as u16
}

/// Every component, in dependency order.
pub fn components(cfg: &StackConfig) -> Vec<Component> {
    let replicas = |n: &str| cfg.scale.get(n).copied().unwrap_or(1).max(1);
    let mut out = vec![
        Component {
            name: "postgres",
            role: Role::Postgres,
            port: cfg.postgres_port,
            replicas: 1,
            depends_on: &[],
        },
        Component {
            name: "redis",
            role: Role::Redis,
            port: cfg.redis_port,
            replicas: 1,
            depends_on: &[],
        },
        Component {
            name: "sink",
            role: Role::Sink,
            port: cfg.otlp_http_port,
            replicas: 1,
            depends_on: &[],
        },
    ];
    let official = cfg.images == ImageMode::Official;
    if official {
        out.push(Component {
            name: "jaeger",
            role: Role::Jaeger,
            port: cfg.jaeger_ui_port,
            replicas: 1,
            depends_on: &[],
        });
        out.push(Component {
            name: "collector",
            role: Role::Collector,
            port: 4318,
            replicas: 1,
            depends_on: &["sink", "jaeger"],
        });
    }
    for &s in SERVICES {
        out.push(Component {
            name: s,
            role: Role::Service,
            port: service_port(cfg, s, 0),
            replicas: replicas(s),
            depends_on: if official {
                &["postgres", "redis", "collector"]
            } else {
                &["postgres", "redis", "sink"]
            },
        });
    }
    out.push(Component {
        name: "gateway",
        role: Role::Gateway,
        port: cfg.gateway_port,
        replicas: 1,
        depends_on: &["auth", "profile", "feed"],
    });
    out
}

/// The name of replica `r` (0-based) of a component: `feed`, `feed-2`, …
pub fn instance_name(name: &str, r: u32) -> String {
    if r == 0 {
        name.to_owned()
    } else {
        format!("{name}-{}", r + 1)
    }
}

/// How components find each other: loopback ports (local runtime) or container names
/// on the project network (Docker runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    Local,
    Docker,
}

impl Net {
    /// Host and port of replica `r` of a component, as other components reach it.
    pub fn addr(self, cfg: &StackConfig, name: &str, replica: u32) -> (String, u16) {
        let port = |n: &str| match n {
            "postgres" => {
                if self == Net::Local {
                    cfg.postgres_port
                } else {
                    5432
                }
            }
            "redis" => {
                if self == Net::Local {
                    cfg.redis_port
                } else {
                    6379
                }
            }
            "sink" | "collector" => 4318,
            "jaeger" => 16686,
            "gateway" => {
                if self == Net::Local {
                    cfg.gateway_port
                } else {
                    8080
                }
            }
            s => service_port(cfg, s, if self == Net::Local { replica } else { 0 }),
        };
        let host = match self {
            Net::Local => "127.0.0.1".to_owned(),
            Net::Docker => instance_name(name, replica),
        };
        let p = if name == "sink" && self == Net::Local {
            cfg.otlp_http_port
        } else {
            port(name)
        };
        (host, p)
    }
}

/// The environment of one service replica on the local runtime.
pub fn service_env(cfg: &StackConfig, name: &str, replica: u32) -> BTreeMap<String, String> {
    service_env_on(cfg, Net::Local, name, replica)
}

/// The environment of one service replica.
pub fn service_env_on(
    cfg: &StackConfig,
    net: Net,
    name: &str,
    replica: u32,
) -> BTreeMap<String, String> {
    let at = |n: &str, r: u32| {
        let (h, p) = net.addr(cfg, n, r);
        format!("{h}:{p}")
    };
    let (_, port) = net.addr(cfg, name, replica);
    let bind = if net == Net::Local {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    };
    let env_name = if net == Net::Local { "local" } else { "docker" };
    let upper = name.to_ascii_uppercase();
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set(&format!("{upper}_LISTEN"), format!("{bind}:{port}"));
    set(
        &format!("{upper}_DATABASE_URL"),
        format!("postgres://postgres@{}/{name}", at("postgres", 0)),
    );
    set("REDIS_URL", format!("redis://{}/0", at("redis", 0)));
    set(
        "AUTH_JWKS_URL",
        format!("http://{}/api/auth/jwks", at("auth", 0)),
    );
    // Service-to-service calls go through the gateway, so replicas are load-balanced.
    set("PROFILE_URL", format!("http://{}", at("gateway", 0)));
    set(
        "PUBLIC_URL",
        format!("http://127.0.0.1:{}", cfg.gateway_port),
    );
    set("AUTH_SELF_URL", format!("http://{}", at(name, replica)));
    // Spans go to the Collector when there is one (official-image mode), else straight
    // to the sink.
    let receiver = if cfg.images == ImageMode::Official && net == Net::Docker {
        "collector"
    } else {
        "sink"
    };
    set(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://{}", at(receiver, 0)),
    );
    set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into());
    set("OTEL_SERVICE_NAME", name.to_owned());
    set(
        "OTEL_RESOURCE_ATTRIBUTES",
        format!(
            "service.instance.id={},deployment.environment.name={env_name}",
            instance_name(name, replica)
        ),
    );
    // A short batch delay, so traces are complete in the sink within a second or two.
    set("OTEL_BSP_SCHEDULE_DELAY", "1000".into());
    set("RUST_LOG", "info".into());
    if name == "auth" {
        // Every client of a workshop stack (browsers, curl, `socialctl load`'s hundreds
        // of users) reaches auth from one address, so the per-address login limit is
        // raised; the per-account limit still stops password guessing.
        set("AUTH_LOGIN_IP_LIMIT", "100000".into());
    }
    for (k, v) in &cfg.env {
        env.insert(k.clone(), v.clone());
    }
    env
}

/// The gateway's NGINX `http {}` body on the local runtime.
pub fn gateway_conf(cfg: &StackConfig) -> String {
    gateway_conf_on(cfg, Net::Local)
}

/// The gateway's NGINX `http {}` body, from compose/nginx/gateway.conf.
pub fn gateway_conf_on(cfg: &StackConfig, net: Net) -> String {
    let servers = |name: &str| {
        let n = cfg.scale.get(name).copied().unwrap_or(1).max(1);
        (0..n)
            .map(|r| {
                let (h, p) = net.addr(cfg, name, r);
                format!("    server {h}:{p} max_fails=3 fail_timeout=5s;")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (gh, gp) = net.addr(cfg, "gateway", 0);
    let listen = if net == Net::Local {
        format!("{gh}:{gp}")
    } else {
        gp.to_string()
    };
    include_str!("../../compose/nginx/gateway.conf")
        .replace("{listen}", &listen)
        .replace("{auth_servers}", &servers("auth"))
        .replace("{profile_servers}", &servers("profile"))
        .replace("{feed_servers}", &servers("feed"))
}

/// What `up` prints last on either runtime: what changed, and the URLs a learner needs.
pub fn print_up_summary(cfg: &StackConfig, changed: usize, elapsed: std::time::Duration) {
    if changed == 0 {
        println!("nothing to do: the stack is already up with these settings");
    } else {
        println!("all healthy in {:.1} s", elapsed.as_secs_f64());
    }
    println!(
        "\n  gateway      http://127.0.0.1:{}/api/",
        cfg.gateway_port
    );
    println!(
        "  OTLP         grpc 127.0.0.1:{}  http http://127.0.0.1:{}",
        cfg.otlp_grpc_port, cfg.otlp_http_port
    );
    println!(
        "  traces       http://127.0.0.1:{}/api/traces",
        cfg.otlp_http_port
    );
    if cfg.images == ImageMode::Official {
        println!(
            "  Jaeger UI    http://127.0.0.1:{}/ (the Collector sends every span to Jaeger and to the sink)",
            cfg.jaeger_ui_port
        );
    }
    println!("  stop with    socialctl down");
}

/// `feed=3` → ("feed", 3).
pub fn parse_scale(s: &str) -> Result<(String, u32), String> {
    let (name, n) = s
        .split_once('=')
        .ok_or_else(|| format!("expected SERVICE=N, got {s:?}"))?;
    if !SERVICES.contains(&name) {
        return Err(format!(
            "unknown service {name:?}; scalable services: {}",
            SERVICES.join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_and_env_flags_parse_or_explain() {
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
    }

    #[test]
    fn replicas_get_their_own_ports_behind_the_gateway() {
        let mut cfg = StackConfig::default();
        cfg.scale.insert("feed".into(), 2);
        let conf = gateway_conf(&cfg);
        assert!(
            conf.contains("server 127.0.0.1:8083 ") && conf.contains("server 127.0.0.1:8183 "),
            "{conf}"
        );
        assert_eq!(
            service_env(&cfg, "feed", 1)["FEED_LISTEN"],
            "127.0.0.1:8183"
        );
        assert_eq!(instance_name("feed", 1), "feed-2");
        let order: Vec<&str> = components(&cfg).iter().map(|c| c.name).collect();
        assert_eq!(
            order,
            [
                "postgres", "redis", "sink", "profile", "auth", "feed", "gateway"
            ]
        );
    }
}
