//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`), signed in to the stack's pages through the sign-in form as a
//! person would: what `bench-web` times its page loads in and `lab browse` opens pages
//! with. The browser runs the site's own tracer, so its spans reach the sink as a real
//! visitor's do.

use std::os::unix::process::CommandExt as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// chromedriver and its browsers, in a process group killed whole when dropped.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// One headless browser with a fresh profile (no cookies, no cache).
pub struct Browser {
    pub client: fantoccini::Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a browser session through it.
    pub async fn start() -> anyhow::Result<Self> {
        if !std::path::Path::new("/usr/bin/chromium").exists() {
            bail!("Chromium is not installed (apt-get install chromium chromium-driver)");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = Driver(
            std::process::Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .process_group(0)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .context("chromedriver is not installed (apt-get install chromium-driver)")?,
        );
        let profile = tempfile::tempdir()?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--user-data-dir={}", profile.path().display())]
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match fantoccini::ClientBuilder::rustls()?
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() >= deadline => {
                    bail!("no browser session from chromedriver: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Ok(Self {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Signs in through the pages' form and waits for the home timeline.
    pub async fn sign_in(&self, base: &str, user: &str, password: &str) -> anyhow::Result<()> {
        let b = &self.client;
        b.goto(&format!("{base}/signin")).await?;
        b.find(fantoccini::Locator::Css("input[name=username]"))
            .await?
            .send_keys(user)
            .await?;
        b.find(fantoccini::Locator::Css("input[name=password]"))
            .await?
            .send_keys(password)
            .await?;
        b.find(fantoccini::Locator::Css("main form button[type=submit]"))
            .await?
            .click()
            .await?;
        b.wait()
            .at_most(Duration::from_secs(10))
            .for_element(fantoccini::Locator::Css("form.compose"))
            .await
            .with_context(|| format!("the browser could not sign in as {user}"))?;
        Ok(())
    }
}
