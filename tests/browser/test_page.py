#!/usr/bin/python3
"""tests/browser/test_page.py - riskweb's page in headless Chromium.

Usage: test_page.py BUILD_DIR   (run by build/tests/test-browser)

Starts a throwaway redis-server and BUILD_DIR/riskweb on free loopback
ports, then with Selenium (Debian's chromium, chromium-driver,
python3-selenium) checks that the page loads without console errors, an
alert XADDed to Redis shows in the feed within 2 s, a notice changes its
status, a summary holding <script> renders as text, units and officers show
by their names from the names list (riskctl lists load names) in the feed,
the open alerts and the unit page, a name holding <script> renders as text,
the filters go into the
URL and survive a reload, the English switch works, a unit page shows the
unit's indicators exactly as riskctl indicators prints them, and the connection indicator shows "disconnected" while
riskweb is stopped and the feed catches up without loss when it is back.
Exits 0 when every check passes."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def redis(*args):
    return subprocess.run(["redis-cli", "-p", str(RPORT)] + [str(a) for a in args],
                          check=True, capture_output=True, text=True).stdout.strip()


def xadd(obj):
    return redis("XADD", "alerts", "*", "data", json.dumps(obj, ensure_ascii=False))


def alert(i, unit="U1", detector="bad_rating", summary=None, officer=None):
    subject = {"unit_id": unit}
    if officer:
        subject["officer_id"] = officer
    return {"id": "al%d" % i, "status": "firing", "detector": detector, "rule": "low_score",
            "severity": "warning", "subject": subject,
            "summary": summary or ("单位 %s 差评 %d" % (unit, i)),
            "ts": "2025-09-01T08:%02d:00Z" % (i % 60)}


def wait_http(url, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return True
        except Exception:
            time.sleep(0.05)
    return False


def start_web():
    p = subprocess.Popen([os.path.join(BUILD, "riskweb"), "-c", CFG],
                         stdout=subprocess.DEVNULL, stderr=open(LOG, "a"))
    check(wait_http("http://127.0.0.1:%d/healthz" % WPORT), "riskweb answers /healthz")
    return p


tmp = tempfile.mkdtemp(prefix="riskweb-browser-")
RPORT, WPORT = free_port(), free_port()
CFG, LOG = os.path.join(tmp, "riskd.json"), os.path.join(tmp, "riskweb.log")
with open(CFG, "w") as f:
    json.dump({"redis": {"port": RPORT}, "metrics": {"listen": ""},
               "web": {"listen": "127.0.0.1:%d" % WPORT}}, f)
rs = subprocess.Popen(["redis-server", "--port", str(RPORT), "--bind", "127.0.0.1",
                       "--save", "", "--appendonly", "no", "--dir", tmp],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
web = None
driver = None
try:
    for _ in range(100):
        try:
            if redis("PING") == "PONG":
                break
        except subprocess.CalledProcessError:
            time.sleep(0.05)
    xadd(alert(1, summary="<script>window.__pwned=1</script><b>某企业</b>", officer="O1"))
    xadd(alert(2, unit="U2", detector="fine_growth"))
    redis("HSET", "riskd:ind:unit:U1:window", "filings", "12", "unfiled", "3",
          "filing_rate", "0.8", "scan_rate", "null", "fines", "1500",
          "complaints", "2", "reviews", "4", "corrections", "1", "correction_rate", "0.25")
    redis("ZADD", "riskd:ind:keys:unit", "1", "U1")
    redis("HSET", "riskd:ind:unit:U1:2025-08", "filing_rate", "0.7", "scan_rate", "0.5")
    redis("HSET", "riskd:ind:unit:U1:2025-09", "filing_rate", "0.9", "scan_rate", "0.6")
    redis("ZADD", "riskd:ind:periods", "1", "2025-08", "2", "2025-09")
    redis("HSET", "riskd:open", "al1", json.dumps(alert(1, officer="O1"), ensure_ascii=False))
    NAMES = os.path.join(tmp, "names.csv")
    with open(NAMES, "w") as f:
        f.write('kind,id,name\nunit,U1,兴庆分局\n'
                'unit,U2,"<script>window.__pwned2=1</script><i>二队</i>"\nofficer,O1,张三\n')
    ctl = subprocess.run([os.path.join(BUILD, "riskctl"), "-c", CFG, "lists", "load", "names",
                          NAMES], capture_output=True, text=True)
    check(ctl.returncode == 0, "riskctl lists load names (%s)" % ctl.stderr.strip())
    web = start_web()

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1366,768"):
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver") \
        if hasattr(webdriver, "ChromeService") else None
    driver = webdriver.Chrome(options=opts, service=service) if service else \
        webdriver.Chrome(options=opts)
    base = "http://127.0.0.1:%d/" % WPORT
    driver.get(base)
    wait = WebDriverWait(driver, 5)

    def conn_state():
        return driver.find_element(By.ID, "conn").get_attribute("data-state")

    def row(aid, table="feed"):
        rows = driver.find_elements(By.CSS_SELECTOR, "#%s tr[data-id='%s']" % (table, aid))
        return rows[0] if rows else None

    wait.until(lambda d: conn_state() == "up")
    check(conn_state() == "up", "the connection indicator shows connected")
    wait.until(lambda d: row("al1") is not None)
    check(driver.find_element(By.TAG_NAME, "h1").text == "执法风险预警", "Chinese by default")
    summ = row("al1").find_element(By.CSS_SELECTOR, "td.summary").text
    check("<script>window.__pwned=1</script><b>某企业</b>" == summ,
          "a summary with <script> renders as text")
    check(driver.execute_script("return window.__pwned === undefined"), "and does not run")
    check(len(driver.find_elements(By.CSS_SELECTOR, "#feed script, #feed b")) == 0,
          "no element made from data")

    # Names from the names list; ids where it has none.
    def unit_text(aid, table="feed"):
        r = row(aid, table)
        links = r.find_elements(By.CSS_SELECTOR, "a.unit") if r else []
        return links[0].text if links else None
    try:
        wait.until(lambda d: unit_text("al1") == "兴庆分局")
    except Exception:
        pass
    check(unit_text("al1") == "兴庆分局", "the feed shows the unit's name")
    check(row("al1").find_element(By.CSS_SELECTOR, "div.subj.officer").text == "张三",
          "and the officer's")
    check(unit_text("al2") == "<script>window.__pwned2=1</script><i>二队</i>",
          "a unit name with <script> renders as text")
    check(driver.execute_script("return window.__pwned2 === undefined") and
          len(driver.find_elements(By.CSS_SELECTOR, "#feed script, #feed i")) == 0,
          "and does not run")
    driver.get(base + "#/open")
    try:
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#open-groups h3 a.unit"))
    except Exception:
        pass
    heads = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#open-groups h3 a.unit")]
    check(heads == ["兴庆分局"], "open alerts are grouped under the unit's name (%s)" % heads)
    driver.get(base + "#/unit/U1")
    try:
        wait.until(lambda d: d.find_element(By.ID, "unit-name").text == "兴庆分局")
    except Exception:
        pass
    check(driver.find_element(By.ID, "unit-name").text == "兴庆分局",
          "the unit page is titled by the unit's name")
    driver.get(base)
    wait.until(lambda d: row("al1") is not None)

    # An alert written now appears within 2 s.
    xadd(alert(3))
    t0 = time.time()
    try:
        WebDriverWait(driver, 2, poll_frequency=0.05).until(lambda d: row("al3") is not None)
    except Exception:
        pass
    check(row("al3") is not None, "a new alert shows within 2 s (%.2f s)" % (time.time() - t0))

    # A notice changes its status.
    xadd({"id": "al3", "status": "resolved", "detector": "bad_rating", "rule": "low_score",
          "severity": "warning", "subject": {"unit_id": "U1"}, "summary": "x",
          "ts": "2025-09-01T09:00:00Z", "reason": "评分已更正"})
    try:
        wait.until(lambda d: row("al3").find_element(By.CSS_SELECTOR, "td.st").text == "已解除")
    except Exception:
        pass
    check(row("al3").find_element(By.CSS_SELECTOR, "td.st").text == "已解除",
          "a notice changes the alert's status")

    # Filters go into the URL and survive a reload.
    inp = driver.find_element(By.CSS_SELECTOR, "#filters input[name=detector]")
    inp.send_keys("fine_growth")
    wait.until(lambda d: "detector=fine_growth" in d.current_url)
    check(row("al1") is None and row("al2") is not None, "the detector filter filters")
    driver.refresh()
    wait.until(lambda d: row("al2") is not None)
    check(driver.find_element(By.CSS_SELECTOR, "#filters input[name=detector]")
          .get_attribute("value") == "fine_growth" and row("al1") is None,
          "the filter survives a reload")
    driver.find_element(By.CSS_SELECTOR, "#filters button[type=reset]").click()
    wait.until(lambda d: row("al1") is not None)

    # No console errors so far.
    errs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    check(not errs, "no console errors (%s)" % errs)

    # English.
    driver.find_element(By.ID, "lang").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Enforcement risk alerts")
    check("lang=en" in driver.current_url, "the English switch goes into the URL")
    check(row("al3").find_element(By.CSS_SELECTOR, "td.st").text == "resolved",
          "statuses in English")
    driver.find_element(By.ID, "lang").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "执法风险预警")

    # A unit page with its indicators.
    driver.get(base + "#/unit/U1")
    try:
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ind tr[data-key=filings]"))
    except Exception:
        pass
    cells = driver.find_elements(By.CSS_SELECTOR, "#ind tr[data-key=filings] td")
    check(len(cells) == 2 and cells[1].text == "12", "the unit page shows filings 12")
    cells = driver.find_elements(By.CSS_SELECTOR, "#ind tr[data-key=filing_rate] td")
    check(len(cells) == 2 and cells[1].text == "80.0%", "and the filing rate 80.0%")
    # Every figure on the unit page is the one riskctl indicators prints for
    # the unit: rates as percentages with one decimal, counts and fines as
    # numbers (the page groups thousands), no figure where the rate is null.
    ctl = subprocess.run([os.path.join(BUILD, "riskctl"), "-c", CFG, "indicators", "--scope",
                          "unit", "--key", "U1", "--json"], capture_output=True, text=True)
    check(ctl.returncode == 0, "riskctl indicators --key U1 --json (%s)" % ctl.stderr.strip())
    ctl_row = json.loads(ctl.stdout)["rows"][0] if ctl.returncode == 0 else {}
    compared, differ = 0, []
    for tr in driver.find_elements(By.CSS_SELECTOR, "#ind tr[data-key]"):
        k = tr.get_attribute("data-key")
        shown = tr.find_elements(By.TAG_NAME, "td")[1].text
        if k not in ctl_row:
            differ.append("%s: on the page, not in riskctl's output" % k)
            continue
        v = ctl_row[k]
        if v is None:
            want = "\u2014"
        elif "rate" in k or "share" in k:
            want = "%.1f%%" % (v * 100.0)
        else:
            want = ("%.2f" % v).rstrip("0").rstrip(".")
        got = shown.replace(",", "")
        compared += 1
        if got != want:
            differ.append("%s: page %r, riskctl %r" % (k, shown, v))
    check(compared >= 5 and not differ,
          "the unit page shows what riskctl indicators prints (%d figures; %s)"
          % (compared, "; ".join(differ) or "all equal"))
    try:
        wait.until(lambda d: row("al1", "unit-alerts") is not None)
    except Exception:
        pass
    check(row("al1", "unit-alerts") is not None and row("al2", "unit-alerts") is None,
          "the unit page lists the unit's alerts only")

    # Disconnected while riskweb is stopped; caught up without loss after.
    driver.get(base)
    wait.until(lambda d: conn_state() == "up" and row("al3") is not None)
    web.send_signal(signal.SIGTERM)
    web.wait(5)
    try:
        WebDriverWait(driver, 10).until(lambda d: conn_state() == "down")
    except Exception:
        pass
    check(conn_state() == "down", "stopped: the indicator shows disconnected")
    check(driver.find_element(By.ID, "conn").text == "已断开，正在重连…", "in words")
    xadd(alert(4))
    xadd(alert(5))
    web = start_web()
    try:
        WebDriverWait(driver, 15).until(lambda d: conn_state() == "up" and row("al5") is not None)
    except Exception:
        pass
    check(conn_state() == "up", "back: the indicator shows connected again")
    check(row("al4") is not None and row("al5") is not None,
          "the alerts written while it was down arrive")
    n = len(driver.find_elements(By.CSS_SELECTOR, "#feed tbody tr"))
    check(n == 5, "each alert once (%d rows)" % n)
finally:
    if driver is not None:
        driver.quit()
    if web is not None and web.poll() is None:
        web.send_signal(signal.SIGTERM)
        web.wait(5)
    rs.terminate()
    rs.wait(5)
    if failures:
        sys.stdout.write(open(LOG).read() if os.path.exists(LOG) else "")
    shutil.rmtree(tmp, ignore_errors=True)

print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
