//! The gateway's NGINX configuration, rendered from the component table: one upstream
//! (a server line per replica) and one location for every entry with a route, inside
//! the fixed parts kept in `compose/nginx/`.

use super::{Net, Role, Stack, recipe::bind};

/// NGINX's main configuration: `compose/nginx/nginx.conf`, its `http {}` body from
/// `compose/nginx/gateway.conf`.
const MAIN: &str = include_str!("../../../compose/nginx/nginx.conf");
const HTTP: &str = include_str!("../../../compose/nginx/gateway.conf");

/// What a cached route adds: the shared cache (`proxy_cache_path` in nginx.conf), held
/// for a week (the files are content-addressed and immutable), one upstream fetch per
/// file when many ask at once, the cache status as a response header, and a log line
/// per request with it. (`add_header` here replaces the server's, so X-Request-Id is
/// repeated.)
const CACHED: &str = "proxy_cache socialnet_files; proxy_cache_valid 200 7d; proxy_cache_lock on; \
add_header X-Cache-Status $upstream_cache_status always; add_header X-Request-Id $socialnet_request_id always; \
access_log /dev/stdout socialnet_cache; ";

/// Every path no route takes, when no frontend takes `/`.
const NOT_FOUND: &str = "    location / {
        default_type application/json;
        return 404 '{\"error\":\"not_found\",\"message\":\"no such endpoint; the API lives under /api/\",\"trace_id\":\"$socialnet_trace_id\"}';
    }";

impl Stack {
    /// The whole `nginx.conf` of the gateway on `net`, with its files under `run`.
    pub fn nginx_conf(&self, net: Net, run: &str) -> String {
        MAIN.replace("{run}", run)
            .replace("{http}", &self.gateway_http(net))
    }

    /// The `http {}` body: maps, upstreams, the server and its routes.
    pub fn gateway_http(&self, net: Net) -> String {
        let mut upstreams = Vec::new();
        let mut routes = Vec::new();
        for c in self.components().filter(|c| !c.routes.is_empty()) {
            let servers: Vec<String> = (0..self.replicas(c))
                .map(|r| {
                    let (h, p) = self.reach(net, "gateway", c.name, r);
                    format!("    server {h}:{p} max_fails=3 fail_timeout=5s;")
                })
                .collect();
            let upstream = format!("socialnet_{}", c.name.replace('-', "_"));
            upstreams.push(format!(
                "upstream {upstream} {{\n{}\n    keepalive 32;\n}}",
                servers.join("\n")
            ));
            let limit = c
                .body_limit
                .map(|b| {
                    // A large upload goes on to the service as it arrives.
                    let stream = if b > super::STREAMED_BODY {
                        "proxy_request_buffering off; "
                    } else {
                        ""
                    };
                    format!("client_max_body_size {b}; {stream}")
                })
                .unwrap_or_default();
            // The sink's public endpoint takes browsers' spans: POST only, rate-limited.
            let guard = if c.role == Role::Sink {
                "limit_except POST { deny all; } limit_req zone=socialnet_telemetry burst=40 nodelay; "
            } else {
                ""
            };
            for route in c.routes {
                let path = route.path;
                let cache = if route.cached { CACHED } else { "" };
                routes.push(format!(
                    "    location {path} {{ {limit}{guard}{cache}proxy_pass http://{upstream}; }}"
                ));
            }
        }
        let gateway = self.component("gateway").expect("the table has a gateway");
        let port = match net {
            Net::Local => self.host_port(gateway, 0, 0),
            Net::Docker => gateway.ports[0].inner,
        };
        // Without a frontend at `/`, every other path is an unknown endpoint.
        let fallback = if self
            .components()
            .any(|c| c.routes.iter().any(|r| r.path == "/"))
        {
            String::new()
        } else {
            NOT_FOUND.to_owned()
        };
        HTTP.replace("{listen}", &format!("{}:{port}", bind(net)))
            .replace("{upstreams}", &upstreams.join("\n\n"))
            .replace("{routes}", &routes.join("\n"))
            .replace("{fallback}", &fallback)
    }
}

#[cfg(test)]
mod tests {
    use crate::stack::{Net, Stack, StackConfig};

    #[test]
    fn every_routed_component_gets_an_upstream_with_each_replica_and_a_location() {
        let mut cfg = StackConfig::default();
        cfg.scale.insert("feed".into(), 2);
        let s = Stack::new(cfg);
        let conf = s.nginx_conf(Net::Local, "/tmp/gw");
        assert!(conf.contains("pid /tmp/gw/nginx.pid;"), "{conf}");
        assert!(
            conf.contains("server 127.0.0.1:8083 ") && conf.contains("server 127.0.0.1:8183 "),
            "{conf}"
        );
        assert!(conf.contains(
            "location /api/auth/ { client_max_body_size 65536; proxy_pass http://socialnet_auth; }"
        ));
        assert!(conf.contains("listen 127.0.0.1:8080;"));
        // Media's files go through the gateway's cache; its API does not.
        let files = conf
            .lines()
            .find(|l| l.contains("location /media/ "))
            .expect("a /media/ location");
        assert!(files.contains("proxy_cache socialnet_files;"), "{files}");
        let api = conf
            .lines()
            .find(|l| l.contains("location /api/media "))
            .expect("an /api/media location");
        assert!(!api.contains("proxy_cache"), "{api}");
        assert!(conf.contains("proxy_cache_path /tmp/gw/cache "), "{conf}");
        let docker = s.gateway_http(Net::Docker);
        assert!(docker.contains("server feed-2:8083 ") && docker.contains("listen 0.0.0.0:8080;"));
        // The frontend takes `/`; unknown API paths still answer JSON; the sink's
        // browser endpoint is POST-only and rate-limited.
        assert!(
            conf.contains(
                "location / { client_max_body_size 11534336; proxy_request_buffering off; proxy_pass http://socialnet_web; }"
            ),
            "{conf}"
        );
        assert!(conf.contains("location /api/ {"), "{conf}");
        assert!(conf.contains("location /v1/traces { client_max_body_size 262144; limit_except POST { deny all; } limit_req zone=socialnet_telemetry"), "{conf}");
        for placeholder in [
            "{listen}",
            "{upstreams}",
            "{routes}",
            "{run}",
            "{http}",
            "{fallback}",
        ] {
            assert!(!conf.contains(placeholder) && !docker.contains(placeholder));
        }
    }
}
