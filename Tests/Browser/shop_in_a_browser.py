"""The demo shop in headless Chromium, as a person uses it, and an attacker's page on
another site trying to act with the person's cookie.

Run by Scripts/browser-test (which Scripts/test calls): it starts the real demo binary on
http://127.0.0.1:PORT and serves the attacker's pages from http://localhost:PORT2, which a
browser treats as another site. Screenshots of every step go to the folder given as the
first argument. Prints "browser: N passed, M failed" and exits non-zero on a failure.
"""

import http.server
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

PASSWORD = "browser-secret"
passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name} {detail}", file=sys.stderr)


def start_demo(binary):
    process = subprocess.Popen(
        [binary, "--port", "0", "--store", "memory", "--demo-password", PASSWORD],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line or "")
        if match:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, f"http://127.0.0.1:{match.group(1)}"
        if process.poll() is not None:
            break
    raise SystemExit("browser: the demo did not start")


def start_attacker(shop):
    """The attacker's site: pages that post to the shop as soon as they load."""
    pages = {
        "/login-attack.html": f"""<!doctype html><title>Win a prize</title>
<form id="f" method="post" action="{shop}/login"><input name="username" value="bob">
<input name="password" value="{PASSWORD}"></form><script>document.getElementById('f').submit()</script>""",
        "/cart-attack.html": f"""<!doctype html><title>Free tea</title>
<form id="f" method="post" action="{shop}/cart/add"><input name="sku" value="kettle">
<input name="quantity" value="9"></form><script>document.getElementById('f').submit()</script>""",
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, "not found").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # localhost and 127.0.0.1 are different sites to the browser: the attack is cross-site.
    return server, f"http://localhost:{server.server_address[1]}"


def wait_for(driver, text, seconds=15):
    """Polls the page for `text` until a deadline: the attacker's pages submit themselves."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if text in driver.page_source:
            return True
        time.sleep(0.05)
    return False


def browser(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,900",
                     f"--user-data-dir={profile}", "--disable-dev-shm-usage"]:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main():
    binary, screenshots = sys.argv[1], sys.argv[2]
    os.makedirs(screenshots, exist_ok=True)
    demo, shop = start_demo(binary)
    attacker, evil = start_attacker(shop)
    profiles = tempfile.mkdtemp()
    first = browser(os.path.join(profiles, "first"))
    second = browser(os.path.join(profiles, "second"))

    def shot(driver, name):
        driver.save_screenshot(os.path.join(screenshots, name + ".png"))

    def log_in(driver, remember):
        driver.get(shop + "/login")
        driver.find_element(By.NAME, "username").send_keys("alice")
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        if remember:
            driver.find_element(By.NAME, "remember").click()
        driver.find_element(By.XPATH, "//main//button[text()='Log in']").click()
        # A click returns before the next page loads (and the password hash takes a moment).
        return wait_for(driver, "Signed in as")

    try:
        first.get(shop + "/")
        shot(first, "01-catalogue")
        check("anonymous visit stores nothing", first.get_cookie("__Host-session") is None)
        first.find_element(By.XPATH, "//button[text()='Add to cart']").click()
        check("added to cart", wait_for(first, "Added 1"))
        check("cart count", "Cart (1)" in first.page_source)
        shot(first, "02-added-to-cart")

        check("signed in", log_in(first, remember=True) and "alice" in first.page_source)
        check("cart kept after sign-in", "Cart (1)" in first.page_source)
        cookie = first.get_cookie("__Host-session")
        check("remember-me cookie persists", cookie is not None and "expiry" in cookie, str(cookie))
        check("cookie is HttpOnly and Secure", cookie is not None and cookie.get("httpOnly") and cookie.get("secure"))
        shot(first, "03-signed-in")

        first.get(shop + "/preferences")
        Select(first.find_element(By.NAME, "theme")).select_by_value("dark")
        Select(first.find_element(By.NAME, "currency")).select_by_value("EUR")
        first.find_element(By.XPATH, "//button[text()='Save']").click()
        check("preferences saved", wait_for(first, "Preferences saved."))
        shot(first, "04-preferences")
        first.get(shop + "/")
        check("prices in euros", "€" in first.page_source)
        shot(first, "04b-catalogue-in-euros")

        check("second browser signed in", log_in(second, remember=False))
        shot(second, "05-second-browser-signed-in")

        first.get(shop + "/sessions")
        rows = first.find_elements(By.XPATH, "//main//table//tr[td]")
        check("two sessions listed", len(rows) == 2, f"{len(rows)} rows")
        shot(first, "06-your-sessions")
        first.find_element(By.XPATH, "//button[text()='Revoke']").click()
        check("revoked", wait_for(first, "That session has been signed out."))
        rows = first.find_elements(By.XPATH, "//main//table//tr[td]")
        check("one session left", len(rows) == 1, f"{len(rows)} rows")
        shot(first, "07-revoked")

        second.get(shop + "/")
        check("second browser signed out", "Signed in as" not in second.page_source)
        shot(second, "08-second-browser-signed-out")

        victim = first.get_cookie("__Host-session")
        first.get(evil + "/login-attack.html")
        check("login CSRF refused", wait_for(first, "cross_origin_request"), first.page_source[:200])
        shot(first, "09-attacker-login-refused")
        first.get(evil + "/cart-attack.html")
        check("cross-site cart post refused", wait_for(first, "cross_origin_request"), first.page_source[:200])
        shot(first, "10-attacker-cart-refused")
        first.get(shop + "/")
        check("victim still signed in as alice", "<strong>alice</strong>" in first.page_source)
        check("victim's cart unchanged", "Cart (1)" in first.page_source)
        check("victim's cookie unchanged", first.get_cookie("__Host-session") == victim)
        shot(first, "11-victim-unchanged")
    finally:
        first.quit()
        second.quit()
        attacker.shutdown()
        demo.terminate()
        demo.wait()
    print(f"browser: {passed} passed, {failed} failed")
    print(f"browser: screenshots in {screenshots}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
