//! The per-trace checks and trace specs: each defect kind named exactly, missing spans
//! and sent requests accounted for, the built-in specs parse.

use verify::checks::{CheckOptions, DefectKind, check_trace};
use verify::report::{SentRequest, verify};
use verify::spec;
use verify::{Span, SpanKind, StatusCode};

const T: &str = "0af7651916cd43dd8448eb211c80319c";
const MS: u64 = 1_000_000;

fn span(
    id: &str,
    parent: &str,
    service: &str,
    kind: SpanKind,
    name: &str,
    start_ms: u64,
    end_ms: u64,
) -> Span {
    let mut attributes = Vec::new();
    match kind {
        SpanKind::Server => {
            attributes.push(("http.request.method".into(), "GET".into()));
            attributes.push((
                "http.route".into(),
                name.split(' ').nth(1).unwrap_or("/").into(),
            ));
            attributes.push(("http.response.status_code".into(), "200".into()));
        }
        SpanKind::Client if name == "GET" => {
            attributes.push(("http.request.method".into(), "GET".into()));
            attributes.push(("server.address".into(), "profile".into()));
            attributes.push(("http.response.status_code".into(), "200".into()));
        }
        SpanKind::Client => {
            attributes.push(("db.system.name".into(), "postgresql".into()));
            attributes.push(("db.operation.name".into(), "SELECT".into()));
            attributes.push(("server.address".into(), "pg".into()));
        }
        _ => {}
    }
    Span {
        trace_id: T.into(),
        span_id: id.into(),
        parent_span_id: parent.into(),
        name: name.into(),
        kind,
        service: service.into(),
        start_ns: start_ms * MS,
        end_ns: end_ms * MS,
        status: StatusCode::Unset,
        status_message: String::new(),
        attributes,
        instance: String::new(),
        ..Default::default()
    }
}

/// A clean feed → profile trace under an external caller, delivered leaves first.
fn clean() -> Vec<Span> {
    vec![
        span(
            "0000000000000005",
            "0000000000000004",
            "profile",
            SpanKind::Client,
            "SELECT profiles",
            12,
            14,
        ),
        span(
            "0000000000000004",
            "0000000000000003",
            "profile",
            SpanKind::Server,
            "GET /api/profiles/{username}",
            11,
            15,
        ),
        span(
            "0000000000000003",
            "0000000000000001",
            "feed",
            SpanKind::Client,
            "GET",
            10,
            16,
        ),
        span(
            "0000000000000002",
            "0000000000000001",
            "feed",
            SpanKind::Client,
            "SELECT posts",
            2,
            8,
        ),
        span(
            "0000000000000001",
            "00000000000000ff",
            "feed",
            SpanKind::Server,
            "GET /api/feed/timeline",
            0,
            20,
        ),
    ]
}

fn kinds(spans: &[Span]) -> Vec<DefectKind> {
    let mut k: Vec<DefectKind> = check_trace(spans, &CheckOptions::default())
        .into_iter()
        .map(|d| d.kind)
        .collect();
    k.sort();
    k.dedup();
    k
}

fn check(name: &str, spans: Vec<Span>, expected: &[DefectKind]) {
    assert_eq!(
        kinds(&spans),
        expected,
        "case {name}: {:#?}",
        check_trace(&spans, &CheckOptions::default())
    );
}

#[test]
fn each_defect_is_named_exactly() {
    use DefectKind::*;
    check("clean, external caller", clean(), &[]);

    let mut orphan = clean();
    orphan.retain(|s| s.span_id != "0000000000000003"); // feed's client span lost
    check("lost client span", orphan, &[MissingParent]);

    let mut no_root = clean();
    no_root[4].kind = SpanKind::Internal;
    check(
        "no root",
        no_root,
        &[NoRoot, MissingParent]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
    );

    let mut roots = clean();
    roots[4].parent_span_id = String::new();
    roots.push(span(
        "0000000000000009",
        "",
        "feed",
        SpanKind::Internal,
        "background",
        1,
        2,
    ));
    check("several roots", roots, &[SeveralRoots]);

    let mut dup = clean();
    dup.push(span(
        "0000000000000002",
        "0000000000000001",
        "feed",
        SpanKind::Client,
        "SELECT likes",
        3,
        4,
    ));
    check("duplicate span id", dup, &[DuplicateSpanId]);

    let mut no_server = clean();
    no_server.retain(|s| s.service != "profile");
    check("client without server", no_server, &[ClientWithoutServer]);

    let mut no_client = clean();
    no_client[1].parent_span_id = "0000000000000001".into(); // profile's server under feed's server
    check(
        "server without client",
        no_client,
        &[ClientWithoutServer, ServerWithoutClient],
    );

    let mut early = clean();
    early[0].start_ns = 2 * MS; // 9 ms before its parent starts
    check("starts before parent", early, &[StartsBeforeParent]);

    let mut late = clean();
    late[3].end_ns = 40 * MS;
    check("ends after parent", late, &[EndsAfterParent]);

    let mut skew_ok = clean();
    skew_ok[0].start_ns = 11 * MS - 2 * MS; // within the 5 ms allowance
    check("skew within allowance", skew_ok, &[]);

    let mut open = clean();
    open[0].end_ns = 0;
    check("never ended", open, &[NeverEnded]);

    let mut swallowed = clean();
    swallowed[1]
        .attributes
        .retain(|(k, _)| k != "http.response.status_code");
    swallowed[1]
        .attributes
        .push(("http.response.status_code".into(), "503".into()));
    swallowed[1].status = StatusCode::Error;
    check(
        "error not propagated",
        swallowed.clone(),
        &[ErrorNotPropagated],
    );
    swallowed[2].status = StatusCode::Error;
    check("error propagated", swallowed, &[]);

    let mut attr = clean();
    attr[4].attributes.retain(|(k, _)| k != "http.route");
    check("missing attribute", attr, &[MissingAttribute]);

    // An object-store call carries the AWS S3 attributes; one without its bucket is
    // incomplete.
    let mut s3 = clean();
    s3[3].name = "S3.PutObject".into();
    s3[3].attributes = [
        ("rpc.system", "aws-api"),
        ("rpc.service", "S3"),
        ("rpc.method", "PutObject"),
        ("aws.s3.bucket", "media"),
        ("server.address", "objects"),
    ]
    .iter()
    .map(|(k, v)| ((*k).into(), (*v).into()))
    .collect();
    check("an S3 call", s3.clone(), &[]);
    s3[3].attributes.retain(|(k, _)| k != "aws.s3.bucket");
    check("an S3 call without its bucket", s3, &[MissingAttribute]);
}

#[test]
fn specs_name_missing_spans_and_report_accounts_for_sent_requests() {
    let spec = spec::parse("timeline.spec", "endpoint GET /api/feed/timeline\nspan feed server GET /api/feed/timeline\nspan feed client LRANGE\n").expect("spec");
    let opts = CheckOptions {
        specs: vec![spec],
        ..Default::default()
    };
    let d = check_trace(&clean(), &opts);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, DefectKind::MissingSpan);
    assert!(
        d[0].detail.contains("LRANGE") && d[0].detail.contains("timeline.spec:3"),
        "{}",
        d[0].detail
    );

    let sent = vec![
        SentRequest {
            trace_id: T.into(),
            parent_span_id: Some("00000000000000ff".into()),
            endpoint: "GET /api/feed/timeline".into(),
            status: Some(200),
            gateway_only: false,
        },
        SentRequest {
            trace_id: "ffffffffffffffffffffffffffffffff".into(),
            parent_span_id: None,
            endpoint: "GET /api/feed/timeline".into(),
            status: Some(200),
            gateway_only: false,
        },
    ];
    let r = verify(&[clean()], Some(&sent), &CheckOptions::default());
    assert_eq!((r.traces, r.complete), (2, 1));
    assert!((r.completeness - 0.5).abs() < 1e-9);
    assert_eq!(r.endpoints[0].sent, Some(2));
    assert_eq!(r.endpoints[0].found, 1);
    assert_eq!(r.kinds[0].kind, DefectKind::MissingTrace);
    let text = verify::report::render(&r);
    assert!(
        text.contains("missing_trace") && text.contains("50.000%"),
        "{text}"
    );

    // A recorded external parent makes an unexported caller span legitimate; any other
    // missing parent in the same trace stays an orphan.
    let mut t = clean();
    t.push(span(
        "000000000000000a",
        "00000000000000ee",
        "feed",
        SpanKind::Client,
        "SELECT x",
        3,
        4,
    ));
    let r = verify(&[t], Some(&sent[..1]), &CheckOptions::default());
    assert_eq!(
        r.kinds.iter().map(|k| k.kind).collect::<Vec<_>>(),
        [DefectKind::MissingParent]
    );
}

#[test]
fn built_in_specs_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/traces");
    let specs = spec::load_dir(&dir).expect("the built-in specs parse");
    assert!(specs.len() >= 5);
}

/// A client that gives up (a timeout) and the request it abandoned, which the server
/// ends as cancelled after its caller stopped waiting: complete, with its error. Before,
/// such a trace counted as `missing_attribute` and `ends_after_parent`.
#[test]
fn a_request_whose_client_went_away_is_complete_with_its_error() {
    let gave_up = |mut spans: Vec<Span>| {
        let client = spans
            .iter_mut()
            .find(|s| s.span_id == "0000000000000003")
            .unwrap();
        client
            .attributes
            .retain(|(k, _)| k != "http.response.status_code");
        client
            .attributes
            .push(("error.type".into(), "timeout".into()));
        client.status = StatusCode::Error;
        let server = spans
            .iter_mut()
            .find(|s| s.span_id == "0000000000000004")
            .unwrap();
        server
            .attributes
            .retain(|(k, _)| k != "http.response.status_code");
        server.end_ns = 30 * MS;
        spans
    };
    let mut cancelled = gave_up(clean());
    let server = cancelled
        .iter_mut()
        .find(|s| s.span_id == "0000000000000004")
        .unwrap();
    server
        .attributes
        .push(("error.type".into(), "cancelled".into()));
    server.status = StatusCode::Error;
    check("client gave up, server cancelled", cancelled, &[]);
    // Without `error.type`, a server span with no status code is still incomplete.
    check(
        "server span without status or error",
        gave_up(clean()),
        &[DefectKind::MissingAttribute],
    );
    // A caller that did not give up still bounds its children.
    let mut late = clean();
    late.iter_mut()
        .find(|s| s.span_id == "0000000000000004")
        .unwrap()
        .end_ns = 30 * MS;
    check(
        "late child of a waiting caller",
        late,
        &[DefectKind::EndsAfterParent],
    );
}

/// A consumer's link is judged against the other traces `verify` reads: complete when
/// the producer's trace holds the linked span, `link_target_missing` when it does not,
/// and a link inside the same trace needs its target in that trace.
#[test]
fn links_resolve_across_traces_and_a_missing_target_is_named() {
    const P: &str = "1111111111111111111111111111111a";
    const C: &str = "2222222222222222222222222222222b";
    let mut producer = span(
        "00000000000000a1",
        "",
        "messaging",
        SpanKind::Producer,
        "send conversation",
        0,
        1,
    );
    producer.trace_id = P.into();
    let consumer = |target_trace: &str, target_span: &str| {
        let mut c = span(
            "00000000000000c1",
            "",
            "messaging",
            SpanKind::Consumer,
            "process conversation",
            2,
            3,
        );
        c.trace_id = C.into();
        c.links.push(verify::Link {
            trace_id: target_trace.into(),
            span_id: target_span.into(),
            attributes: Vec::new(),
        });
        c
    };
    let judge = |c: Span| {
        let r = verify(
            &[vec![producer.clone()], vec![c]],
            None,
            &CheckOptions::default(),
        );
        r.defects.iter().map(|d| d.kind).collect::<Vec<_>>()
    };
    assert_eq!(judge(consumer(P, "00000000000000a1")), vec![]);
    assert_eq!(
        judge(consumer(P, "00000000000000ff")),
        vec![DefectKind::LinkTargetMissing]
    );
    assert_eq!(
        judge(consumer(C, "00000000000000a1")),
        vec![DefectKind::LinkTargetMissing],
        "a link into its own trace whose target is elsewhere"
    );
    // Alone, without the producer's trace, the link cannot be resolved.
    let alone = verify(
        &[vec![consumer(P, "00000000000000a1")]],
        None,
        &CheckOptions::default(),
    );
    assert_eq!(alone.defects[0].kind, DefectKind::LinkTargetMissing);
    assert!(
        alone.defects[0].detail.contains(P),
        "{}",
        alone.defects[0].detail
    );
}

/// A page's server span, the browser's load of it (begun before the server span, ended
/// after it) and a later fetch from the page, which reaches web again: one trace with no
/// defect. The same browser spans under a parent that never arrived are orphans, and
/// time still nests between the browser's own spans.
#[test]
fn a_browser_continues_the_pages_trace_and_its_parentage_is_checked() {
    let browser = |mut s: Span| {
        s.service = "socialnet-web".into();
        s.resource = vec![("telemetry.sdk.language".to_owned(), "webjs".to_owned())].into();
        s
    };
    let page = span(
        "00000000000000a1",
        "",
        "web",
        SpanKind::Server,
        "GET /",
        100,
        120,
    );
    let load = browser(span(
        "00000000000000b1",
        "00000000000000a1",
        "web",
        SpanKind::Internal,
        "documentLoad",
        90,
        300,
    ));
    let mut fetch = browser(span(
        "00000000000000b2",
        "00000000000000a1",
        "web",
        SpanKind::Client,
        "GET",
        500,
        540,
    ));
    fetch.attributes.retain(|(k, _)| k != "server.address");
    fetch
        .attributes
        .push(("server.address".into(), "127.0.0.1".into()));
    let fragment = span(
        "00000000000000a2",
        "00000000000000b2",
        "web",
        SpanKind::Server,
        "GET /fragments/timeline",
        505,
        535,
    );
    let whole = vec![page.clone(), load.clone(), fetch.clone(), fragment.clone()];
    check("a page and its browser", whole, &[]);

    let mut lost = load.clone();
    lost.parent_span_id = "00000000000000ff".into();
    check(
        "a browser span whose page span never arrived",
        vec![page.clone(), lost, fetch.clone(), fragment.clone()],
        &[DefectKind::MissingParent],
    );
    // Between two browser spans time must nest as anywhere else.
    let mut late = browser(span(
        "00000000000000b3",
        "00000000000000b1",
        "web",
        SpanKind::Internal,
        "documentFetch",
        95,
        400,
    ));
    late.kind = SpanKind::Internal;
    check(
        "a browser span that outlives its browser parent",
        vec![page, load, late, fetch, fragment],
        &[DefectKind::EndsAfterParent],
    );
}
