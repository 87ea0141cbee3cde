"""Swagger UI in headless Chromium: run perform with the example input and read the answer."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from wrapper_server import running_server
from wrapper_support import job_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMEDRIVER = "/usr/bin/chromedriver"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return ""


@pytest.fixture
def browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    binary = _chromium()
    if not binary or not os.path.exists(CHROMEDRIVER):
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fatman-chromium-")
    options = Options()
    options.binary_location = binary
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,2000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_swagger_ui_executes_perform_with_example(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    env = {"FATMAN_NAME": "adder", "FATMAN_VERSION": "1.0.0", "FATMAN_WORKERS": "1"}
    with running_server(job_path("adder"), env=env) as server:
        browser.get(server.url + "/pub/fatman/adder/1.0.0/")  # "/" leads to the docs
        wait = WebDriverWait(browser, 30)
        summary = wait.until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, "#operations-perform-call_perform .opblock-summary"))
        )
        assert browser.current_url.endswith("/pub/fatman/adder/1.0.0/docs")
        summary.click()
        wait.until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, "#operations-perform-call_perform .try-out__btn"))
        ).click()
        body = wait.until(
            ec.presence_of_element_located(
                (By.CSS_SELECTOR, "#operations-perform-call_perform textarea.body-param__text")
            )
        )
        assert '"x": 20' in body.get_attribute("value") and '"y": 5' in body.get_attribute("value")
        browser.find_element(By.CSS_SELECTOR, "#operations-perform-call_perform button.execute").click()
        answer = wait.until(
            ec.presence_of_element_located(
                (
                    By.CSS_SELECTOR,
                    "#operations-perform-call_perform .live-responses-table .response-col_description pre",
                )
            )
        )
        wait.until(lambda _: answer.text.strip() != "")
        assert answer.text.strip() == "100"
        status = browser.find_element(
            By.CSS_SELECTOR,
            "#operations-perform-call_perform .live-responses-table tbody .response-col_status",
        )
        assert status.text.strip() == "200"
        request_url = browser.find_element(
            By.CSS_SELECTOR, "#operations-perform-call_perform .request-url pre"
        )
        assert request_url.text.strip().endswith("/pub/fatman/adder/1.0.0/api/v1/perform")
        browser.save_screenshot(str(tmp_path / "swagger.png"))
