"""Named public-domain paintings for the methods that take any style picture (gatys, texture, train).

:func:`fetch_painting` returns the copy shipped in the package for the paintings that have one
(``starry_night`` and ``great_wave``, from Debian packages; :data:`PICTURES_DIR`), and downloads any other
painting once from Wikimedia Commons into a cache (``$FASTNST_CACHE_DIR/paintings``, default
``~/.cache/fastnst/paintings``; like torchvision's weights), checks that it decodes and has the painting's
proportions, and returns the cached file's path. What a
style name means (a painting, a built-in or generated style, a file) is answered by
:mod:`fastnst.styles.registry`, which calls this module for paintings.

Only paintings in the public domain are listed: the artist died more than 100 years ago, or (for
the few 20th-century works) the artist died more than 70 years ago *and* the work was published
before 1929 (public domain in the US and in countries with life + 70 years). Commons hosts faithful
photographs of these two-dimensional works, which carry no new copyright (Commons' PD-Art policy).
Works still under copyright somewhere that matters (Picasso's La Muse, Afremov's Rain Princess,
Picabia's Udnie) stay out.

Torch-free: standard library and Pillow only. Nothing is downloaded at import time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fastnst.constants import CACHE_DIR_ENV, cache_dir
from fastnst.errors import PaintingUnavailableError

log = logging.getLogger(__name__)

#: Environment variable overriding where paintings are downloaded from (a mirror of Commons' upload tree).
BASE_URL_ENV = "FASTNST_PAINTINGS_URL"
#: Wikimedia Commons' upload server; thumbnails live at thumb/<h>/<hh>/<File>/<W>px-<File> (h = md5 of the name).
BASE_URL = "https://upload.wikimedia.org/wikipedia/commons/"
#: Wikimedia asks clients to identify themselves (its User-Agent policy); urllib's default is refused.
USER_AGENT = "fastnst (neural style transfer; https://github.com/fastnst/fastnst) python-urllib"
#: Paintings shipped in the package (small copies from Debian packages; ATTRIBUTION.md lists them).
PICTURES_DIR = Path(__file__).resolve().parent / "pictures"
#: Largest download accepted (a thumbnail of 800-1280 px is 0.2-1 MB).
MAX_DOWNLOAD_BYTES = 40 * 1024 * 1024
#: Seconds to wait for the server before giving up.
TIMEOUT_S = 30.0
#: How far the downloaded picture's height/width may differ from the painting's (scans crop differently).
ASPECT_TOLERANCE = 0.08


@dataclass(frozen=True)
class Painting:
    """One registry entry. ``aspect`` is height / width of the painting as photographed on Commons."""

    name: str
    title: str
    artist: str
    year: str
    died: int
    commons_file: str  # Wikimedia Commons file name, spaces as underscores
    width: int  # width of the thumbnail fetched (in use elsewhere for this file, so Commons serves it)
    aspect: float
    public_domain: str  # why it is public domain
    aliases: tuple[str, ...] = ()
    shipped: str = ""  # a copy shipped in the package (PICTURES_DIR/<shipped>; no download), and where it is from
    shipped_source: str = ""

    @property
    def shipped_path(self) -> Path | None:
        """The copy shipped with fastnst (used offline, never downloaded), or None."""
        return PICTURES_DIR / self.shipped if self.shipped else None

    @property
    def suffix(self) -> str:
        return Path(self.commons_file).suffix.lower() or ".jpg"

    @property
    def page(self) -> str:
        """The file's description page on Commons (source, licence, history)."""
        return "https://commons.wikimedia.org/wiki/File:" + urllib.parse.quote(self.commons_file)

    def url(self, base: str | None = None) -> str:
        """Where the thumbnail is downloaded from: ``base`` (default: $FASTNST_PAINTINGS_URL or Commons)."""
        base = base or os.environ.get(BASE_URL_ENV) or BASE_URL
        if not base.endswith("/"):
            base += "/"
        h = hashlib.md5(self.commons_file.encode("utf-8")).hexdigest()
        quoted = urllib.parse.quote(self.commons_file)
        return f"{base}thumb/{h[0]}/{h[:2]}/{quoted}/{self.width}px-{quoted}"

    @property
    def expected_size(self) -> tuple[int, int]:
        """(width, height) of the thumbnail as requested."""
        return self.width, round(self.width * self.aspect)


_OLD = "public domain worldwide: the artist died in {died}, more than 100 years ago"
_PUBLISHED = ("public domain in the US (published {year}, before 1929) and where copyright lasts the "
              "artist's life + 70 years (the artist died in {died})")

PAINTINGS: dict[str, Painting] = {p.name: p for p in (
    Painting("starry_night", "The Starry Night", "Vincent van Gogh", "1889", 1890,
             "Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg", 1280, 73.7 / 92.1, _OLD,
             ("the_starry_night", "starry"), "starry_night.jpg",
             "Debian opencv-doc 4.6.0+dfsg-12, examples/data/starry_night.jpg (736x583; OpenCV sample data, "
             "Apache-2.0; the painting is public domain)"),
    Painting("great_wave", "The Great Wave off Kanagawa", "Katsushika Hokusai", "c. 1831", 1849,
             "Tsunami_by_hokusai_19th_century.jpg", 1280, 25.7 / 37.9, _OLD,
             ("the_great_wave", "wave", "great_wave_off_kanagawa"), "great_wave.jpg",
             "Debian gcompris-qt-data 3.1-2, usr/share/gcompris-qt/rcc/paintings.rcc, the puzzle pieces of "
             "GreatWave put back together (665x449; reproduction by WebMuseum, GPL-3+ as Debian's copyright "
             "file says; the painting is public domain)"),
    Painting("the_scream", "The Scream", "Edvard Munch", "1893", 1944,
             "Edvard_Munch,_1893,_The_Scream,_oil,_tempera_and_pastel_on_cardboard,_91_x_73_cm,"
             "_National_Gallery_of_Norway.jpg", 800, 91 / 73.5, _PUBLISHED, ("scream",)),
    Painting("composition_vii", "Composition VII", "Wassily Kandinsky", "1913", 1944,
             "Vassily_Kandinsky,_1913_-_Composition_7.jpg", 800, 200 / 300, _PUBLISHED,
             ("composition_7", "kandinsky")),
    Painting("shipwreck_of_the_minotaur", "The Shipwreck of the Minotaur (The Wreck of a Transport Ship)",
             "J. M. W. Turner", "c. 1810", 1851, "Shipwreck_turner.jpg", 800, 173 / 245, _OLD,
             ("the_shipwreck_of_the_minotaur", "shipwreck", "minotaur")),
    Painting("la_grande_jatte", "A Sunday Afternoon on the Island of La Grande Jatte", "Georges Seurat",
             "1884-1886", 1891, "A_Sunday_on_La_Grande_Jatte,_Georges_Seurat,_1884.jpg", 1280, 207.5 / 308.1,
             _OLD, ("grande_jatte", "sunday_afternoon", "seurat")),
    Painting("impression_sunrise", "Impression, Sunrise", "Claude Monet", "1872", 1926,
             "Monet_-_Impression,_Sunrise.jpg", 800, 48 / 63, _PUBLISHED, ("impression", "sunrise")),
    Painting("the_kiss", "The Kiss", "Gustav Klimt", "1907-1908", 1918,
             "The_Kiss_-_Gustav_Klimt_-_Google_Cultural_Institute.jpg", 1280, 1.0, _OLD, ("kiss",)),
)}

#: Every name a painting answers to (its name and its aliases, lower case with underscores) -> its name.
ALIASES: dict[str, str] = {alias: p.name for p in PAINTINGS.values() for alias in (p.name, *p.aliases)}


def names() -> list[str]:
    """The registry's painting names."""
    return list(PAINTINGS)


def shipped_names() -> list[str]:
    """The paintings shipped with fastnst (usable offline, no download)."""
    return [p.name for p in PAINTINGS.values() if p.shipped_path is not None and p.shipped_path.is_file()]


def reason(painting: Painting) -> str:
    """Why ``painting`` is public domain, in words."""
    return painting.public_domain.format(died=painting.died, year=painting.year)


def cached_path(painting: Painting, root: str | os.PathLike | None = None) -> Path:
    """Where ``painting`` is (or will be) cached: <cache>/paintings/<name><suffix>."""
    return Path(root or cache_dir()) / "paintings" / f"{painting.name}{painting.suffix}"


def check_painting(path: str | os.PathLike, painting: Painting) -> tuple[int, int]:
    """Check that ``path`` decodes as an image with the painting's proportions; returns (width, height).

    A looser check than a checksum on purpose: Commons re-renders thumbnails now and then (other
    bytes, same picture). Raises PaintingUnavailableError when it does not decode, is far from the
    requested size, or its height/width differs from the painting's by more than ASPECT_TOLERANCE.
    """
    from PIL import Image

    from fastnst.constants import max_image_pixels

    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > max_image_pixels():
                raise PaintingUnavailableError(f"'{path}' is {w}x{h}, far larger than the painting's thumbnail")
            img.load()  # decode every pixel: truncated downloads fail here
    except PaintingUnavailableError:
        raise
    except Exception as exc:
        raise PaintingUnavailableError(
            f"the download for '{painting.name}' is not an image ({type(exc).__name__}: {exc})") from None
    ew, eh = painting.expected_size
    aspect = h / w
    if not (0.5 <= max(w, h) / max(ew, eh) <= 2.0) or abs(aspect / painting.aspect - 1) > ASPECT_TOLERANCE:
        raise PaintingUnavailableError(
            f"the download for '{painting.name}' is {w}x{h}, not the painting (expected about {ew}x{eh})")
    return w, h


def fetch_painting(painting: Painting, root: str | os.PathLike | None = None, *, url: str | None = None) -> Path:
    """The file of ``painting``: the copy shipped with fastnst where there is one (offline; ``url`` not given),
    else the cached file, downloaded first if it is not cached yet.

    The download goes to a temporary file beside the cache entry and is renamed into place only
    after :func:`check_painting` accepts it, so the cache never holds a partial or wrong file (an
    entry that fails the check is replaced). Raises PaintingUnavailableError (one line naming the
    URL and how to pass a local file) when the download fails or is not the painting.
    """
    shipped = painting.shipped_path
    if shipped is not None and url is None and shipped.is_file():
        return shipped
    target = cached_path(painting, root)
    if target.is_file():
        try:
            check_painting(target, painting)
            return target
        except PaintingUnavailableError:
            log.warning("cached %s fails its check; downloading it again", target)
    source = url or painting.url()
    hint = (f"to use a local copy instead, download it elsewhere (source: {painting.page}) and pass "
            f"--style PATH, or save it as {target}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PaintingUnavailableError(f"cannot create the cache folder {target.parent} ({exc.strerror}); "
                                       f"set {CACHE_DIR_ENV} to a writable folder, or {hint}") from None
    import tempfile

    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(source, out, painting, hint)
        try:
            check_painting(tmp, painting)
        except PaintingUnavailableError as exc:
            raise PaintingUnavailableError(f"{exc} (from {source}); {hint}") from None
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        log.info("downloaded %s to %s", source, target)
        return target
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _download(url: str, out, painting: Painting, hint: str) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    total = 0
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                total += len(chunk)
                if total > MAX_DOWNLOAD_BYTES:
                    raise PaintingUnavailableError(
                        f"the download for '{painting.name}' from {url} exceeds "
                        f"{MAX_DOWNLOAD_BYTES / 2 ** 20:g} MB; {hint}")
                out.write(chunk)
    except PaintingUnavailableError:
        raise
    except urllib.error.HTTPError as exc:
        raise PaintingUnavailableError(
            f"cannot download painting '{painting.name}' from {url} (HTTP {exc.code} {exc.reason}); {hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise PaintingUnavailableError(
            f"cannot download painting '{painting.name}' from {url} (offline? {why}); {hint}") from None
