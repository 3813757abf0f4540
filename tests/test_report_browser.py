"""The --quick report's index.html in a real browser (headless Debian chromium): it loads without script
errors, every image decodes, and the screenshot is a rendered page, not a blank one."""
import html
import pathlib
import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if pathlib.Path("/usr/bin/chromium").exists() else None)
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
              pytest.mark.slow]  # the --quick report, rendered by a browser
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Runs in the page at the load event: counts images and those that decoded, and collects script errors.
PROBE = """<script>
window.jaxhwErrors = [];
window.addEventListener("error", e => window.jaxhwErrors.push(String(e.message || e.type)), true);
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const out = document.createElement("pre");
  out.id = "jaxhw-probe";
  out.textContent = `images=${images.length} loaded=${images.length - broken.length} sections=` +
    `${document.querySelectorAll("section, details").length} errors=${JSON.stringify(window.jaxhwErrors)} ` +
    `broken=${JSON.stringify(broken)}`;
  document.body.appendChild(out);
});
</script>"""


def chromium(url: str, profile: pathlib.Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url], capture_output=True,
                          text=True, timeout=120)


def test_index_html_loads_with_every_image_in_chromium(quick_report, tmp_path):
    page = (quick_report / "index.html").read_text(encoding="utf-8")
    expected_images = len(re.findall(r"<img ", page))
    probed = quick_report / "probed.html"  # beside index.html, so relative paths would resolve the same way
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    try:
        result = chromium(probed.as_uri(), tmp_path / "profile-dom", "--virtual-time-budget=10000", "--dump-dom")
    finally:
        probed.unlink()
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="jaxhw-probe">([^<]*)</pre>', result.stdout)
    assert found, "the probe never ran: the page did not finish loading"
    probe = html.unescape(found.group(1))
    counts = dict(re.findall(r"(images|loaded|sections)=(\d+)", probe))
    assert int(counts["images"]) == expected_images >= 12
    assert counts["loaded"] == counts["images"], probe
    assert int(counts["sections"]) >= 20
    assert "errors=[]" in probe, probe


def test_screenshot_shows_a_rendered_page(quick_report, tmp_path):
    shot = tmp_path / "report.png"
    result = chromium((quick_report / "index.html").as_uri(), tmp_path / "profile-shot", f"--screenshot={shot}",
                      "--window-size=1280,4000")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (4000, 1280)
    grey = pixels[..., :3].mean(axis=2)
    # Text, tables and figures: many rows hold dark pixels, and the page is not one flat colour.
    assert (grey < 0.5).any(axis=1).mean() > 0.3 and grey.std() > 0.05
