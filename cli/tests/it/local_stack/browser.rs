//! The site in a real headless Chromium (Debian's chromium and chromium-driver, over
//! WebDriver): register, post (text, a script that must not run, a photo), follow, a
//! profile that scrolls for more, sign out, sign in with the workshop's identity
//! provider, and two browsers talking live; the site's own tracer runs in the page, and
//! its spans join the server's traces in the sink. Screenshots of the timeline at a
//! desktop and a phone width are kept under the run directory.

use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::{GATEWAY, Group, SINK_HTTP, api, eventually, spans_of};

const DRIVER: u16 = 19515;

/// One browser window with a profile of its own (its own cookies).
struct Browser {
    b: Client,
    _profile: tempfile::TempDir,
}

async fn browser() -> Browser {
    let profile = tempfile::tempdir().expect("browser profile dir");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.path().display())]
        }),
    );
    let b = ClientBuilder::rustls()
        .expect("a WebDriver client")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{DRIVER}"))
        .await
        .expect("a Chromium session");
    Browser {
        b,
        _profile: profile,
    }
}

fn at(path: &str) -> String {
    format!("http://127.0.0.1:{GATEWAY}{path}")
}

/// An element of the page the browser shows, waited for (a click loads a new page);
/// when it never comes, the page it shows instead.
async fn find(b: &Client, locator: Locator<'_>, what: &str) -> Element {
    match b
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(locator)
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let url = b
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let src = b.source().await.unwrap_or_default();
            panic!("{what}: {e} at {url}:\n{src}");
        }
    }
}

async fn type_into(b: &Client, css: &str, text: &str) {
    find(b, Locator::Css(css), css)
        .await
        .send_keys(text)
        .await
        .expect("type");
}

async fn click(b: &Client, locator: Locator<'_>, what: &str) {
    find(b, locator, what).await.click().await.expect("click");
}

/// A script's answer in the page.
async fn run(b: &Client, script: &str) -> Value {
    b.execute(script, Vec::new()).await.expect("script")
}

/// Posts from the home page's composer (and a photo, when given).
async fn post(b: &Client, text: &str, photo: Option<&std::path::Path>) {
    b.goto(&at("/")).await.expect("home");
    type_into(b, "form.compose textarea[name=body]", text).await;
    if let Some(p) = photo {
        type_into(b, "form.compose input[type=file]", &p.display().to_string()).await;
    }
    click(b, Locator::Css("form.compose button"), "the post button").await;
    find(b, Locator::Css("form.compose"), "back home after posting").await;
}

/// Where the run keeps what a person may want to look at (screenshots).
fn run_dir() -> std::path::PathBuf {
    std::env::var_os("SOCIALNET_RUN_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("socialnet-test-run"))
}

/// Every span of each trace in the sink that holds a span from the browser (up to 100).
async fn browser_traces(client: &reqwest::Client) -> Vec<Vec<Value>> {
    let list: Value = client
        .get(format!(
            "http://127.0.0.1:{SINK_HTTP}/api/traces?service=socialnet-web&limit=100"
        ))
        .send()
        .await
        .expect("sink")
        .json()
        .await
        .expect("JSON");
    let mut out = Vec::new();
    for t in list.as_array().into_iter().flatten() {
        let id = t["trace_id"].as_str().unwrap_or_default();
        out.push(spans_of(client, id, 1).await);
    }
    out
}

fn has(spans: &[Value], service: &str, kind: &str, name: &str) -> bool {
    spans
        .iter()
        .any(|s| s["service"] == service && s["kind"] == kind && s["name"] == name)
}

/// One root, and every other span's parent in the trace.
fn whole(spans: &[Value]) -> Result<(), String> {
    let ids: std::collections::HashSet<&str> =
        spans.iter().filter_map(|s| s["span_id"].as_str()).collect();
    let roots = spans
        .iter()
        .filter(|s| s["parent_span_id"].as_str().unwrap_or("").is_empty())
        .count();
    let orphans: Vec<&Value> = spans
        .iter()
        .filter(|s| {
            let p = s["parent_span_id"].as_str().unwrap_or("");
            !p.is_empty() && !ids.contains(p)
        })
        .collect();
    if roots == 1 && orphans.is_empty() {
        Ok(())
    } else {
        Err(format!("{roots} roots, orphans {orphans:?}"))
    }
}

fn png(path: &std::path::Path) {
    let img = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([x as u8, y as u8, 90]));
    image::DynamicImage::ImageRgb8(img)
        .save_with_format(path, image::ImageFormat::Png)
        .expect("a photo to post");
}

pub(super) async fn a_real_browser_uses_the_site(client: &reqwest::Client, e2e_token: &str) {
    // chromedriver and the browsers it starts, in a process group of their own that
    // goes whole when the test ends, however it ends.
    let _driver = Group(
        Command::new("chromedriver")
            .arg(format!("--port={DRIVER}"))
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; ./dev.sh installs it)"),
    );
    eventually(Duration::from_secs(20), || async {
        client
            .get(format!("http://127.0.0.1:{DRIVER}/status"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("chromedriver does not answer: {e}"))
    })
    .await;
    let one = browser().await;
    let b = &one.b;

    // Register and post.
    b.goto(&at("/register")).await.expect("register page");
    type_into(b, "input[name=username]", "in_a_browser").await;
    type_into(b, "input[name=password]", "correct horse battery").await;
    click(
        b,
        Locator::Css("main form button[type=submit]"),
        "the register button",
    )
    .await;
    find(
        b,
        Locator::Css("form.compose"),
        "signed in: the home page's composer",
    )
    .await;
    post(b, "posted from a real browser", None).await;
    find(
        b,
        Locator::XPath("//article[contains(@class,'post')]/p[text()='posted from a real browser']"),
        "the post on the timeline",
    )
    .await;

    // HTML in a post is text: shown as written, never run.
    let attack =
        r#"<script>document.title='pwned'</script><img src=x onerror="document.title='pwned'">"#;
    post(b, attack, None).await;
    let shown = find(
        b,
        Locator::XPath("//article[contains(@class,'post')]/p[contains(text(),'<script>')]"),
        "the post with HTML in it, as text",
    )
    .await;
    assert_eq!(shown.text().await.expect("text"), attack);
    assert_ne!(
        b.title().await.expect("title"),
        "pwned",
        "a post's script ran"
    );
    assert_eq!(
        run(b, "return document.querySelectorAll('article.post script, article.post img[src=x]').length").await,
        json!(0)
    );

    // A photo: uploaded to media through web, shown by its thumbnail once processed.
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = dir.path().join("photo.png");
    png(&photo);
    post(b, "a photo from a browser", Some(&photo)).await;
    let img = find(
        b,
        Locator::XPath(
            "//article[p[text()='a photo from a browser']]//img[contains(@src,'/media/')]",
        ),
        "the photo's thumbnail on the timeline",
    )
    .await;
    let src = img.attr("src").await.expect("src").unwrap_or_default();
    assert!(
        src.ends_with(".jpg"),
        "a thumbnail, not the original: {src}"
    );
    eventually(Duration::from_secs(10), || async {
        let loaded = run(
            b,
            "var i = document.querySelector('article.post img'); return i.complete && i.naturalWidth;",
        )
        .await;
        (loaded.as_u64().unwrap_or(0) > 0)
            .then_some(())
            .ok_or_else(|| format!("the thumbnail never loaded: {loaded}"))
    })
    .await;

    // Screenshots of the timeline, desktop and phone widths, for a person to look at.
    let shots = run_dir().join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    for (name, w, h) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        b.set_window_size(w, h).await.expect("window size");
        b.goto(&at("/")).await.expect("home");
        find(b, Locator::Css("article.post img"), "the timeline").await;
        let bytes = b.screenshot().await.expect("screenshot");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        let path = shots.join(format!("timeline-{name}.png"));
        std::fs::write(&path, &bytes).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }
    b.set_window_size(1280, 900).await.expect("window size");

    // Follow someone from their profile page.
    b.goto(&at("/u/e2e_user")).await.expect("profile page");
    click(
        b,
        Locator::XPath("//button[text()='Follow']"),
        "a follow button",
    )
    .await;
    find(
        b,
        Locator::XPath("//button[text()='Unfollow']"),
        "followed: the button turned to Unfollow",
    )
    .await;

    // A profile with more posts than a page: scrolling down fetches the next page in
    // place. That page view is one trace: web's server span, profile's and feed's, the
    // browser's documentLoad under it and the fetch the scroll made, with its own server
    // span in web, and no orphan.
    for i in 0..22 {
        let (s, v) = api(
            client,
            reqwest::Method::POST,
            "/api/feed/posts",
            Some(e2e_token),
            Some(json!({"body": format!("filler {i}")})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    b.goto(&at("/u/e2e_user")).await.expect("profile page");
    let page_trace = run(
        b,
        "return document.querySelector('meta[name=traceparent]').content.split('-')[1]",
    )
    .await
    .as_str()
    .expect("the page's trace id")
    .to_owned();
    find(b, Locator::Css("a[data-more]"), "an older-posts link").await;
    run(
        b,
        "window.scrollTo(0, document.body.scrollHeight); return 0",
    )
    .await;
    eventually(Duration::from_secs(10), || async {
        let n = run(b, "return document.querySelectorAll('article.post').length").await;
        (n.as_u64().unwrap_or(0) > 20)
            .then_some(())
            .ok_or_else(|| format!("scrolling loaded no more posts: {n} shown"))
    })
    .await;
    // Leaving the page sends what the tracer holds.
    b.goto(&at("/search")).await.expect("another page");
    let spans = eventually(Duration::from_secs(30), || async {
        let spans = spans_of(client, &page_trace, 1).await;
        let fetch = spans.iter().find(|s| {
            s["service"] == "socialnet-web" && s["kind"] == "client" && s["name"] == "GET"
        });
        let ok = has(&spans, "web", "server", "GET /u/{username}")
            && has(&spans, "socialnet-web", "internal", "documentLoad")
            && has(&spans, "web", "server", "GET /fragments/u/{username}")
            && has(
                &spans,
                "feed",
                "server",
                "GET /api/feed/users/{username}/posts",
            )
            && has(&spans, "profile", "server", "GET /api/profiles/{username}")
            && fetch.is_some();
        // Spans arrive in batches from each process: whole once the last has come.
        match (ok, whole(&spans)) {
            (true, Ok(())) => Ok(spans.clone()),
            (_, Err(e)) => Err(format!(
                "the page view's trace is not whole yet ({e}): {spans:#?}"
            )),
            (false, _) => Err(format!(
                "the page view's trace lacks a span yet: {spans:#?}"
            )),
        }
    })
    .await;
    let server = spans
        .iter()
        .find(|s| s["service"] == "web" && s["name"] == "GET /u/{username}")
        .expect("server span");
    let load = spans
        .iter()
        .find(|s| s["name"] == "documentLoad")
        .expect("documentLoad");
    assert_eq!(
        load["parent_span_id"], server["span_id"],
        "browser → server"
    );
    let resource = load["resource"].to_string();
    assert!(
        resource.contains("webjs") && resource.contains("user_agent.original"),
        "{resource}"
    );

    // A JavaScript error in the page becomes an exception event in the page's trace.
    b.goto(&at("/")).await.expect("home");
    let home_trace = run(
        b,
        "return document.querySelector('meta[name=traceparent]').content.split('-')[1]",
    )
    .await
    .as_str()
    .expect("trace id")
    .to_owned();
    // (The browser mutes an error from a script the page did not load itself, as
    // WebDriver's is, to "Script error." with no stack: the event still says an error
    // happened in this page, and where the page's own script fails it says what.)
    run(
        b,
        "setTimeout(function () { throw new TypeError('thrown on purpose by the test'); }, 0); return 0",
    )
    .await;
    b.goto(&at("/search")).await.expect("another page");
    eventually(Duration::from_secs(30), || async {
        let spans = spans_of(client, &home_trace, 1).await;
        let event = spans
            .iter()
            .filter(|s| s["service"] == "socialnet-web" && s["status"] == "error")
            .flat_map(|s| s["events"].as_array().cloned().unwrap_or_default())
            .find(|e| e["name"] == "exception");
        match event {
            Some(e)
                if e.to_string().contains("exception.type")
                    && e.to_string().contains("exception.message") =>
            {
                Ok(())
            }
            _ => Err(format!(
                "no exception event in the page's trace: {spans:#?}"
            )),
        }
    })
    .await;

    // Sign out, then in again with the workshop's identity provider: the PKCE dance
    // through auth, ending signed in here.
    click(
        b,
        Locator::XPath("//button[text()='Sign out']"),
        "a sign-out button",
    )
    .await;
    click(
        b,
        Locator::XPath("//a[contains(text(),'Sign in with')]"),
        "the identity provider's button",
    )
    .await;
    type_into(b, "input[name=login_hint]", "Oauth.Browser").await;
    click(b, Locator::Css("form button"), "the provider's Continue").await;
    find(
        b,
        Locator::XPath("//a[text()='@oauth_browser']"),
        "signed in through the provider: the header names the account",
    )
    .await;
    let cookies = b.get_all_cookies().await.expect("cookies");
    assert!(
        cookies.iter().all(|c| !c.value().contains("eyJ")),
        "no token in the browser's cookies"
    );

    // Two browsers talk live: presence, typing and a message arrive without a reload.
    let two = browser().await;
    let b2 = &two.b;
    b2.goto(&at("/register")).await.expect("register page");
    type_into(b2, "input[name=username]", "browser_two").await;
    type_into(b2, "input[name=password]", "correct horse battery").await;
    click(
        b2,
        Locator::Css("main form button[type=submit]"),
        "the register button",
    )
    .await;
    find(b2, Locator::Css("form.compose"), "signed in").await;
    b.goto(&at("/messages")).await.expect("messages");
    type_into(b, "input[name=with]", "browser_two").await;
    click(
        b,
        Locator::XPath("//button[text()='Start']"),
        "start a conversation",
    )
    .await;
    find(
        b,
        Locator::Css("section[data-conversation][data-live=open]"),
        "the conversation, live",
    )
    .await;
    let url = b.current_url().await.expect("url").to_string();
    b2.goto(&url).await.expect("the same conversation");
    find(
        b2,
        Locator::Css("section[data-conversation][data-live=open]"),
        "the conversation, live, in the second browser",
    )
    .await;
    find(
        b2,
        Locator::XPath("//li[@data-presence='oauth_browser']/span[text()='online']"),
        "the first browser's user online",
    )
    .await;
    find(
        b,
        Locator::XPath("//li[@data-presence='browser_two']/span[text()='online']"),
        "the second browser's user came online, live",
    )
    .await;
    type_into(b2, "form.send textarea", "typing…").await;
    find(
        b,
        Locator::XPath("//p[contains(@class,'typing')][contains(text(),'@browser_two is typing')]"),
        "the other side typing",
    )
    .await;
    type_into(b, "form.send textarea", "hello, live").await;
    click(
        b,
        Locator::XPath("//form[contains(@class,'send')]//button"),
        "Send",
    )
    .await;
    find(
        b2,
        Locator::XPath("//article[contains(@class,'message')]/p[text()='hello, live']"),
        "the message, arrived live in the other browser",
    )
    .await;
    // Shown once to its sender (the ack and its own delivery are one message).
    eventually(Duration::from_secs(5), || async {
        let n = run(
            b,
            "return Array.from(document.querySelectorAll('article.message p')).filter(function (p) { return p.textContent === 'hello, live'; }).length",
        )
        .await;
        (n == json!(1))
            .then_some(())
            .ok_or_else(|| format!("the sender sees it {n} times"))
    })
    .await;
    // Its trace starts at the click in the browser: click → WS send (the browser's
    // CLIENT span, carried in the frame) → messaging's WS send.
    b.goto(&at("/messages")).await.expect("leave the page");
    let sent = eventually(Duration::from_secs(30), || async {
        browser_traces(client)
            .await
            .into_iter()
            .find(|spans| {
                has(spans, "socialnet-web", "internal", "click")
                    && has(spans, "socialnet-web", "client", "WS send")
                    && has(spans, "messaging", "server", "WS send")
                    && whole(spans).is_ok()
            })
            .ok_or_else(|| "no whole trace from the click to messaging yet".to_owned())
    })
    .await;
    let root = sent
        .iter()
        .find(|s| s["parent_span_id"].as_str().unwrap_or("").is_empty())
        .expect("root");
    assert_eq!(
        root["name"], "click",
        "the browser starts the trace: {sent:#?}"
    );

    // The second browser signs out and in again with its password.
    click(
        b2,
        Locator::XPath("//button[text()='Sign out']"),
        "a sign-out button",
    )
    .await;
    type_into(b2, "input[name=username]", "browser_two").await;
    type_into(b2, "input[name=password]", "correct horse battery").await;
    click(
        b2,
        Locator::Css("main form button[type=submit]"),
        "the sign-in button",
    )
    .await;
    find(
        b2,
        Locator::XPath("//a[text()='@browser_two']"),
        "signed in again with the password",
    )
    .await;

    b2.clone().close().await.expect("close the second browser");
    b.clone().close().await.expect("close the browser");
}
