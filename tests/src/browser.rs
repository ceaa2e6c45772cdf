//! A real headless Chromium, driven over WebDriver (Debian's `chromium`
//! and `chromedriver`; `tests/run` installs both). Each `Browser` runs its
//! own chromedriver on a port the kernel picks and one session in it; both
//! end when it is dropped. Screenshots go to `target/screenshots/<test>/`.
//!
//! There is no silent skip: without Chromium the tests fail and say what
//! to install. `LOKET_CHROMIUM` and `LOKET_CHROMEDRIVER` override the
//! paths.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const WAIT_MAX: Duration = Duration::from_secs(30);

pub struct Browser {
    pub client: Client,
    // Dropped after `client`, so the session's connection goes first.
    _driver: Driver,
    pub base: String,
    shots: PathBuf,
    shot_count: std::sync::atomic::AtomicU32,
}

fn chromium() -> String {
    std::env::var("LOKET_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn chromedriver() -> String {
    std::env::var("LOKET_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (1280×1000, a
    /// kiosk's landscape screen) pointed at `base`.
    pub async fn start(test: &str, base: &str) -> anyhow::Result<Browser> {
        Self::start_with(test, base, false).await
    }

    /// For the sync server's pages: its certificate is from the private CA
    /// that `sync-server init` made, which this Chromium does not know.
    /// (Pinning and the CA are tested without a browser.)
    pub async fn start_https(test: &str, base: &str) -> anyhow::Result<Browser> {
        Self::start_with(test, base, true).await
    }

    async fn start_with(test: &str, base: &str, accept_insecure_certs: bool) -> anyhow::Result<Browser> {
        let (chromium, chromedriver) = (chromium(), chromedriver());
        for bin in [&chromium, &chromedriver] {
            if !std::path::Path::new(bin).exists() {
                bail!(
                    "{bin} is missing: the browser tests need Chromium (run the tests with tests/run, which installs chromium and chromium-driver)"
                );
            }
        }
        let driver = Driver::start(&chromedriver).await?;
        let url = format!("http://127.0.0.1:{}", driver.port);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("acceptInsecureCerts".into(), json!(accept_insecure_certs));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--window-size=1280,1000", "--lang=id-ID", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-default-apps", "--disable-sync", "--metrics-recording-only",
                    // Back loads pages again, as it does when a browser keeps
                    // none of these no-store pages: what the kiosk answers is
                    // what is tested (its pageshow handler covers the cache).
                    "--disable-features=BackForwardCache",
                ],
            }),
        );
        // WebDriver is plain HTTP on loopback, but the builder wants a TLS
        // provider chosen: ours (ring), as everywhere else.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientBuilder::rustls()?
            .capabilities(caps)
            .connect(&url)
            .await
            .context("starting a Chromium session (is chromedriver the same version as chromium?)")?;
        let shots = crate::target_profile_dir().parent().map(|p| p.join("screenshots").join(test)).unwrap_or_default();
        std::fs::create_dir_all(&shots)?;
        Ok(Browser {
            client,
            _driver: driver,
            base: base.trim_end_matches('/').to_owned(),
            shots,
            shot_count: Default::default(),
        })
    }

    pub async fn go(&self, path: &str) -> anyhow::Result<()> {
        self.client.goto(&format!("{}{path}", self.base)).await.with_context(|| format!("opening {path}"))
    }

    /// Opens a whole URL (another origin than `base`, such as a kiosk's
    /// staff console).
    pub async fn go_url(&self, url: &str) -> anyhow::Result<()> {
        self.client.goto(url).await.with_context(|| format!("opening {url}"))
    }

    /// The origin of the page shown (`http://127.0.0.1:41234`).
    pub async fn origin(&self) -> anyhow::Result<String> {
        let url = self.client.current_url().await?;
        Ok(url.origin().ascii_serialization())
    }

    /// Resizes the window to `width`×`height` CSS pixels of viewport (a
    /// 1080×1920 portrait kiosk, a 1366×768 counter PC), so layouts are
    /// checked at the screens they are used on.
    pub async fn viewport(&self, width: u32, height: u32) -> anyhow::Result<()> {
        // The window has chrome around the viewport: measure and correct.
        self.client.set_window_size(width, height).await?;
        let inner = self.js("return [window.innerWidth, window.innerHeight];").await?;
        let (iw, ih) = (inner[0].as_u64().unwrap_or(0), inner[1].as_u64().unwrap_or(0));
        let (w, h) = (u64::from(width) * 2 - iw, u64::from(height) * 2 - ih);
        self.client.set_window_size(u32::try_from(w)?, u32::try_from(h)?).await?;
        Ok(())
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> anyhow::Result<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        })
    }

    pub async fn find(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        match self.client.wait().at_most(WAIT_MAX).for_element(Locator::Css(css)).await {
            Ok(el) => Ok(el),
            Err(e) => bail!("no element {css} on {}: {e}", self.path_or_unknown().await),
        }
    }

    async fn path_or_unknown(&self) -> String {
        self.path().await.unwrap_or_else(|_| "?".into())
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.find(css).await?.click().await.with_context(|| format!("clicking {css}"))
    }

    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let el = self.find(css).await?;
        el.clear().await?;
        el.send_keys(text).await.with_context(|| format!("typing into {css}"))
    }

    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    pub async fn exists(&self, css: &str) -> anyhow::Result<bool> {
        Ok(!self.client.find_all(Locator::Css(css)).await?.is_empty())
    }

    /// Whether the page's current DOM (with form values as attributes
    /// where the server put them) contains `needle`.
    pub async fn source_contains(&self, needle: &str) -> bool {
        self.client.source().await.map(|s| s.contains(needle)).unwrap_or(false)
    }

    /// Logs in at a kiosk's staff console (`staff`, its own origin, e.g.
    /// `KioskProcess::staff`) as the harness's staff member
    /// (`crate::STAFF_ID`), and waits for the queue.
    pub async fn kiosk_staff_login(&self, staff: &str) -> anyhow::Result<()> {
        self.go_url(&format!("{staff}/staf")).await?;
        self.wait_path("/staf/masuk").await?;
        self.type_into("#staff_id", crate::STAFF_ID).await?;
        self.type_into("#password", crate::STAFF_PASSWORD).await?;
        self.click("#login").await?;
        self.find("#sync-indicator").await?;
        anyhow::ensure!(self.path().await? == "/staf", "not on the queue after login");
        Ok(())
    }

    /// The browser's cookies for this site as a `Cookie` header, session
    /// and CSRF cookies included (`HttpOnly` ones too), so a download can be
    /// fetched exactly as the browser would ask for it: the pages' CSP lets
    /// no script fetch anything.
    pub async fn cookie_header(&self) -> anyhow::Result<String> {
        let cookies = self.client.get_all_cookies().await?;
        Ok(cookies.iter().map(|c| format!("{}={}", c.name(), c.value())).collect::<Vec<_>>().join("; "))
    }

    /// A form field's current value.
    pub async fn value(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.find(css).await?.prop("value").await?.unwrap_or_default())
    }

    pub async fn js(&self, script: &str) -> anyhow::Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Sets a field's value directly, past `maxlength` and the page's own
    /// script, as a crafted request would.
    pub async fn force_value(&self, css: &str, value: &str) -> anyhow::Result<()> {
        self.client
            .execute("document.querySelector(arguments[0]).value = arguments[1];", vec![json!(css), json!(value)])
            .await?;
        Ok(())
    }

    /// Waits until `check` holds for the page, re-reading it as it changes
    /// (a condition, not a fixed delay); fails after 30 s with `what`.
    pub async fn wait_until<F, Fut>(&self, what: &str, mut check: F) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<bool>>,
    {
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            if check().await.unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.shot("timeout").await.ok();
                bail!("timed out waiting for {what} on {}", self.path_or_unknown().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the browser to show `path` (after a click or a redirect).
    pub async fn wait_path(&self, prefix: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let seen = self.path().await?;
            if seen.starts_with(prefix) {
                return Ok(seen);
            }
            anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {prefix}; the browser shows {seen}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot, numbered in the order taken.
    pub async fn shot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let n = self.shot_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let png = self.client.screenshot().await?;
        let path = self.shots.join(format!("{n:02}-{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Every resource the page loaded came from the app itself (a kiosk's
    /// listener or the central server): from the page's own origin, which
    /// is on loopback.
    pub async fn assert_only_local_requests(&self) -> anyhow::Result<()> {
        let urls = self
            .js("return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);")
            .await?;
        let urls = urls.as_array().cloned().unwrap_or_default();
        anyhow::ensure!(!urls.is_empty(), "no resource entries");
        let origin = self.origin().await?;
        anyhow::ensure!(
            origin.starts_with("http://127.0.0.1:") || origin.starts_with("https://127.0.0.1:"),
            "the page is on {origin}, not on loopback"
        );
        for u in urls {
            let u = u.as_str().unwrap_or("");
            anyhow::ensure!(u.starts_with(&origin), "the page loaded {u}, which is not on {origin}");
        }
        Ok(())
    }

    /// No visible text on the page is smaller than `px` CSS pixels.
    pub async fn assert_min_font_px(&self, px: f64) -> anyhow::Result<()> {
        let small = self
            .js(
                "const out = []; const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
                 while (walk.nextNode()) {
                   const n = walk.currentNode, el = n.parentElement;
                   if (!n.textContent.trim() || !el || el.closest('[hidden]')) continue;
                   const st = getComputedStyle(el), r = el.getBoundingClientRect();
                   if (st.display === 'none' || st.visibility === 'hidden' || r.width <= 1) continue;
                   const size = parseFloat(st.fontSize);
                   if (size < arguments_px) out.push(el.tagName + '.' + el.className + ' ' + size + 'px: ' + n.textContent.trim().slice(0, 40));
                 }
                 return out;"
                    .replace("arguments_px", &px.to_string())
                    .as_str(),
            )
            .await?;
        anyhow::ensure!(
            small.as_array().is_some_and(Vec::is_empty),
            "text under {px}px on {}: {small}",
            self.path_or_unknown().await
        );
        Ok(())
    }

    /// The page was not taken over by injected markup: its title is its
    /// own and no injected image or script element exists in the content.
    pub async fn assert_not_injected(&self) -> anyhow::Result<()> {
        let v = self
            .js("return [document.title, document.querySelectorAll('main img, main script, main iframe').length, window.__pwned === true];")
            .await?;
        anyhow::ensure!(v[0].as_str().is_some_and(|t| !t.contains("pwned")), "title changed: {v}");
        anyhow::ensure!(v[1] == 0, "injected elements in the page: {v}");
        anyhow::ensure!(v[2] == false, "injected script ran: {v}");
        Ok(())
    }
}

/// axe-core (tests/assets/README.md): the accessibility checker the
/// tests inject into pages. Never served by Loket.
const AXE: &str = include_str!("../assets/axe.min.js");

impl Browser {
    /// Runs axe-core on the page shown (WCAG 2.0, 2.1 and 2.2 A and AA
    /// rules and axe's best practices) and returns its serious and
    /// critical violations as `id: help (n nodes)`, each with the first
    /// offending elements' selectors after a `—`. The pages' CSP allows no
    /// script of their own; WebDriver's script runs outside it, as a
    /// browser extension's would.
    pub async fn axe_serious_violations(&self) -> anyhow::Result<Vec<String>> {
        let loaded = self.client.execute(&format!("{AXE}\n;return typeof window.axe;"), vec![]).await?;
        anyhow::ensure!(loaded == "object", "axe-core did not load: {loaded}");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ': ' + v.help + ' (' + v.nodes.length + ' nodes) — '
                       + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await?;
        Ok(found
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default())
    }

    /// Makes the page's viewport `width` × `height` CSS pixels (the window
    /// is grown by whatever the browser keeps for itself).
    pub async fn set_viewport(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.client.set_window_size(width, height).await?;
        let inner = self.js("return [window.innerWidth, window.innerHeight];").await?;
        let (iw, ih) = (inner[0].as_u64().unwrap_or(0), inner[1].as_u64().unwrap_or(0));
        let (dw, dh) = (u64::from(width).saturating_sub(iw), u64::from(height).saturating_sub(ih));
        if dw > 0 || dh > 0 {
            let grow = |v: u32, d: u64| v + u32::try_from(d).unwrap_or(0);
            self.client.set_window_size(grow(width, dw), grow(height, dh)).await?;
        }
        Ok(())
    }

    /// Saves the page as a PNG at `path`: the viewport, or with `full`
    /// the whole page down to at most `max_height` pixels (the window is
    /// made that tall for the shot, then put back).
    pub async fn save_png(&self, path: &std::path::Path, full: Option<u32>) -> anyhow::Result<()> {
        let size =
            self.js("return [window.innerWidth, window.innerHeight, document.documentElement.scrollHeight];").await?;
        let (w, h, page) =
            (size[0].as_u64().unwrap_or(0), size[1].as_u64().unwrap_or(0), size[2].as_u64().unwrap_or(0));
        let (w, h) = (u32::try_from(w)?, u32::try_from(h)?);
        let tall = full.map(|max| u32::try_from(page).unwrap_or(max).min(max)).filter(|t| *t > h);
        if let Some(t) = tall {
            self.set_viewport(w, t).await?;
        }
        let png = self.client.screenshot().await?;
        if tall.is_some() {
            self.set_viewport(w, h).await?;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Whether every table on the page fits the window: no table (or the
    /// box scrolling it) wider than its container, and no page-wide
    /// horizontal scroll. Returns the ids of the tables that do not.
    pub async fn tables_too_wide(&self) -> anyhow::Result<Vec<String>> {
        let v = self
            .js("const out = [];
                 const page = document.documentElement;
                 if (page.scrollWidth > page.clientWidth) out.push('page ' + page.scrollWidth + ' > ' + page.clientWidth);
                 for (const t of document.querySelectorAll('main table')) {
                   const box = t.parentElement;
                   const r = t.getBoundingClientRect(), b = box.getBoundingClientRect();
                   const inside = b.right - parseFloat(getComputedStyle(box).paddingRight);
                   if (r.right > inside + 0.5 || box.scrollWidth > box.clientWidth)
                     out.push((t.id || '?') + ' ' + Math.round(r.width) + ' > ' + Math.round(b.width));
                 }
                 return out;")
            .await?;
        Ok(v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default())
    }

    /// Ends the session cleanly, then the driver.
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

/// A running chromedriver, in its own process group, so that dropping it
/// ends chromedriver and every Chromium process it started.
struct Driver {
    child: Child,
    port: u16,
}

const DRIVER_STARTED: &str = "ChromeDriver was started successfully on port ";

impl Driver {
    /// Starts chromedriver with `--port=0`: the kernel picks a free port
    /// as chromedriver binds it (IPv4 and IPv6 alike), and chromedriver
    /// prints the port it got ("ChromeDriver was started successfully on
    /// port N."). That line on our own child's stdout is the proof that
    /// the port is ours: there is no window, as with a port chosen here and
    /// bound by chromedriver later, in which another process takes the
    /// port, chromedriver fails to bind, and the test talks to that other
    /// process (a kiosk of a test running in parallel, say). Checked with
    /// Debian's ChromeDriver 156; one that cannot do this exits or reports
    /// port 0, and the test fails saying so.
    ///
    /// ChromeDriver 156 binds IPv4 first and then the same port on IPv6;
    /// when that port is taken on IPv6 meanwhile it exits with "IPv4 port
    /// not available" (seen once in a full run, with many tests binding
    /// ports at once). A fresh chromedriver then gets a fresh port: a few
    /// tries, each proven by its own output as above.
    async fn start(chromedriver: &str) -> anyhow::Result<Driver> {
        const TRIES: usize = 5;
        let mut last = None;
        for _ in 0..TRIES {
            match Self::start_once(chromedriver).await {
                Ok(driver) => return Ok(driver),
                Err(e) if format!("{e:#}").contains("port not available") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one try").context(format!("chromedriver found no free port in {TRIES} tries")))
    }

    async fn start_once(chromedriver: &str) -> anyhow::Result<Driver> {
        let mut child = Command::new(chromedriver)
            .arg("--port=0")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {chromedriver}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut driver = Driver { child, port: 0 };
        // A blocking read, off the runtime's threads; dropping `driver`
        // on a timeout kills chromedriver, which ends the read.
        let read = tokio::task::spawn_blocking(move || -> anyhow::Result<u16> {
            let mut lines = BufReader::new(stdout).lines();
            let mut seen = Vec::new();
            let mut port = None;
            for line in lines.by_ref() {
                let line = line.context("reading chromedriver's output")?;
                if let Some(number) = line.strip_prefix(DRIVER_STARTED) {
                    let number: u16 = number.trim_end_matches('.').parse().with_context(|| format!("in {line:?}"))?;
                    anyhow::ensure!(number != 0, "chromedriver cannot pick its own port: {line:?}");
                    port = Some(number);
                    break;
                }
                seen.push(line);
            }
            let Some(port) = port else {
                bail!("chromedriver exited before it listened:\n{}", seen.join("\n"));
            };
            // Keep draining stdout so chromedriver never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            Ok(port)
        });
        driver.port = match tokio::time::timeout(WAIT_MAX, read).await {
            Ok(joined) => joined.context("reading chromedriver's output")??,
            Err(_) => bail!("chromedriver did not say it listens within {WAIT_MAX:?}"),
        };
        Ok(driver)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Fails on any serious or critical axe-core violation on the page
    /// shown ([`Browser::axe_serious_violations`]), naming them.
    pub async fn assert_accessible(&self) -> anyhow::Result<()> {
        let found = self.axe_serious_violations().await.context("running axe-core")?;
        anyhow::ensure!(found.is_empty(), "accessibility on {}:\n{}", self.path_or_unknown().await, found.join("\n"));
        Ok(())
    }
}
