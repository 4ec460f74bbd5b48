"""Build fastnst's image sets offline from packages, with a manifest of every file, its source and licence.

    python scripts/build_datasets.py photos    data/photos     # training photos (content images)
    python scripts/build_datasets.py paintings data/paintings  # public-domain paintings (built-in styles)
    python scripts/build_datasets.py judge     data/judge      # held-out photos and styles (judging only)

Sources (nothing else is ever downloaded):
- Debian packages, fetched with ``apt-get download`` into ``--debs`` (default ``data/debs``) unless a
  ``PKG_*.deb`` is already there, and unpacked with ``dpkg-deb -x``: the wallpaper packages
  mate-backgrounds, lomiri-wallpapers-20.04, plasma-workspace-wallpapers (photos), opencv-doc
  (The Starry Night; judging photos), gcompris-qt-data (paintings cut into puzzle pieces, reassembled
  here from the boards' piece positions; judging photos);
- scikit-image's and scikit-learn's bundled sample photos (``pip install scikit-image scikit-learn``).

Every set is a folder of RGB JPEGs (quality 95) plus ``manifest.csv`` (file, package and version, path
inside the package, author, licence, size, sha256). Paintings and judging photos are written whole (long
side at most ``--long-side``). The training photos are written whole at ``--long-side`` and, from the
full-resolution original, as ``--crop``-pixel random crops (one per ``--crop``² pixels of the original,
seeded): training's random resized crops then see the photos at several scales, fine detail included. The sets are
disjoint: no photo of ``judge`` is in ``photos``; quality decisions are judged on ``judge`` only.
Licences were read from each package's copyright file (and, for the Plasma wallpapers, from each
wallpaper's metadata.json); the table below records them per file.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import random
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from PIL import Image

# (package, path inside the package, author, licence) of every photo of the training set. Chosen by eye
# from the four wallpaper packages: photographs only (renders, gradients and logos left out).
MATE = "usr/share/backgrounds/mate/nature/"
PLASMA = "usr/share/wallpapers/{}/contents/images/{}"
LOMIRI = "usr/share/backgrounds/"
PHOTOS: tuple[tuple[str, str, str, str], ...] = (
    ("lomiri-wallpapers-20.04", LOMIRI + "Infinite-Sea_by_Aury88.jpg", "Aury88", "CC-BY-SA-3.0"),
    ("lomiri-wallpapers-20.04", LOMIRI + "Kleiber_by_Lukas_Baubkus.jpg", "Lukas Baubkus", "CC-BY-SA-3.0"),
    ("mate-backgrounds", MATE + "Aqua.jpg", "Charles Barbin", "GPL-2+"),
    ("mate-backgrounds", MATE + "Blinds.jpg", "Lennart Poettering, Andrea Cimitan", "GPL-2+"),
    ("mate-backgrounds", MATE + "Dune.jpg", "Marco Cogoni, Hylke Bons", "GPL-2+"),
    ("mate-backgrounds", MATE + "FreshFlower.jpg", "Jens Ansorg", "GPL-2+"),
    ("mate-backgrounds", MATE + "Garden.jpg", "Charles Barbin", "GPL-2+"),
    ("mate-backgrounds", MATE + "GreenMeadow.jpg", "Timothy Schellhase, Lapo Calamandrei", "GPL-2+"),
    ("mate-backgrounds", MATE + "LadyBird.jpg", "Charles Barbin", "GPL-2+"),
    ("mate-backgrounds", MATE + "RainDrops.jpg", "blackcombwhistler07", "GPL-2+"),
    ("mate-backgrounds", MATE + "Storm.jpg", "Sergey Nazarov", "GPL-2+"),
    ("mate-backgrounds", MATE + "TwoWings.jpg", "Charles Barbin, Hylke Bons", "GPL-2+"),
    ("mate-backgrounds", MATE + "Wood.jpg", "Jean-François Fortin Tam", "GPL-2+"),
    ("mate-backgrounds", MATE + "YellowFlower.jpg", "Charles Barbin", "GPL-2+"),
    *(("plasma-workspace-wallpapers", PLASMA.format(name, size), author, "LGPL-3.0")
      for name, size, author in (
          ("Autumn", "2560x1600.jpg", "RJ Quiralta"), ("BytheWater", "2560x1600.jpg", "Maciej Wiklo"),
          ("ColdRipple", "2560x1600.jpg", "Risto Saukonpää"), ("ColorfulCups", "2560x1600.jpg", "Dmitri Popov"),
          ("DarkestHour", "2560x1600.jpg", "Risto Saukonpää"), ("EveningGlow", "2560x1600.jpg", "Ian Hex"),
          ("FallenLeaf", "2560x1600.jpg", "Martin Klapetek"), ("Grey", "2560x1600.jpg", "Sigi Sagi"),
          ("Kite", "2560x1600.jpg", "Risto Saukonpää"), ("OneStandsOut", "2560x1600.jpg", "Risto Saukonpää"),
          ("Path", "2560x1600.jpg", "Risto Saukonpää"), ("summer_1am", "2560x1600.jpg", "Risto Saukonpää"))),
    ("plasma-workspace-wallpapers", PLASMA.format("Volna", "5120x2880.jpg"), "Nikita Babin", "CC-BY-SA-4.0"),
)
# (module, file, description, licence) of the bundled sample photos of scikit-image / scikit-learn
# (licences as their docstrings and README state them).
LIBRARY_PHOTOS: tuple[tuple[str, str, str, str], ...] = (
    ("skimage", "astronaut.png", "Eileen Collins, NASA", "public domain"),
    ("skimage", "chelsea.png", "Chelsea the cat, Stefan van der Walt", "CC0-1.0"),
    ("skimage", "coffee.png", "coffee cup, Rachel Michetti", "CC0-1.0"),
    ("skimage", "rocket.jpg", "DSCOVR launch, SpaceX", "public domain"),
    ("skimage", "motorcycle_left.png", "Middlebury stereo 2014, Scharstein et al.", "public domain (dataset terms)"),
    ("skimage", "camera.png", "cameraman, Lav Varshney", "CC0-1.0"),
    ("sklearn", "china.jpg", "danielbuechele (Flickr)", "CC-BY-2.0"),
    ("sklearn", "flower.jpg", "vultilion (Flickr)", "CC-BY-2.0"),
)
OPENCV = "usr/share/doc/opencv-doc/examples/data/"
GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc/"
# Held-out photos: people, architecture, animals, landscapes, bright skies and white walls. Never trained on.
JUDGE_PHOTOS: tuple[tuple[str, str, str, str], ...] = (
    ("opencv-doc", OPENCV + "messi5.jpg", "OpenCV sample data", "Apache-2.0 (package)"),
    ("opencv-doc", OPENCV + "building.jpg", "OpenCV sample data", "Apache-2.0 (package)"),
    ("opencv-doc", OPENCV + "leuvenA.jpg", "OpenCV sample data", "Apache-2.0 (package)"),
    ("opencv-doc", OPENCV + "baboon.jpg", "OpenCV sample data (USC-SIPI)", "Apache-2.0 (package)"),
    ("opencv-doc", OPENCV + "fruits.jpg", "OpenCV sample data", "Apache-2.0 (package)"),
    ("opencv-doc", OPENCV + "home.jpg", "OpenCV sample data", "Apache-2.0 (package)"),
    ("gcompris-qt-data", "erase/cheetah.webp", "Charles J. Sharp / Wikimedia Commons", "CC-BY-SA-4.0"),
    ("gcompris-qt-data", "erase/red_panda.webp", "Mathias Appel / Wikimedia Commons", "CC0-1.0"),
    ("gcompris-qt-data", "erase/swans.webp", "Charles J. Sharp / Wikimedia Commons", "CC-BY-SA-4.0"),
    ("gcompris-qt-data", "erase/horse.webp", "Eatcha / Wikimedia Commons", "CC-BY-SA-4.0"),
)
# Held-out styles (a Van Gogh, an abstract, graffiti, a grainy texture); never trained on.
JUDGE_STYLES: tuple[tuple[str, str, str, str], ...] = (
    ("gcompris-qt-data", "painting/gogh_auvert", "Vincent van Gogh, Village Street in Auvers (1890)",
     "public domain painting; reproduction GPL-3.0+ (WebMuseum via GCompris)"),
    ("gcompris-qt-data", "painting/kandinky", "Wassily Kandinsky, Composition VIII (1923)",
     "public domain painting (US: published 1923; EU: artist died 1944); reproduction GPL-3.0+"),
    ("opencv-doc", OPENCV + "graf1.png", "graffiti (Oxford affine covariant regions data, via OpenCV)",
     "Apache-2.0 (package)"),
    ("skimage", "gravel.png", "gravel texture, CC0Textures", "CC0-1.0"),
)
# Public-domain paintings for built-in styles: (package, source, title, licence).
PAINTINGS: tuple[tuple[str, str, str, str], ...] = (
    ("opencv-doc", OPENCV + "starry_night.jpg", "Vincent van Gogh, The Starry Night (1889)",
     "public domain painting"),
    *(("gcompris-qt-data", f"painting/{key}", title,
       "public domain painting; reproduction GPL-3.0+ (WebMuseum via GCompris)") for key, title in (
        ("GreatWave", "Katsushika Hokusai, The Great Wave off Kanagawa (1823-1829)"),
        ("KazusaSeaRoute", "Katsushika Hokusai, Kazusa Sea Route (1830)"),
        ("HiroshigeInokashiraSnow", "Utagawa Hiroshige, The Benzaiten Shrine at Inokashira in Snow"),
        ("renoir-moulin_de_la_galette", "Pierre-Auguste Renoir, Bal du moulin de la Galette (1876)"),
        ("bazille_rampart", "Frédéric Bazille, The Ramparts at Aigues-Mortes (1867)"),
        ("cassat_summertime", "Mary Cassatt, Summertime (1894)"),
        ("PieterBruegel", "Pieter Bruegel the Elder, The Harvesters (1565)"),
        ("Arcimboldo_Spring", "Giuseppe Arcimboldo, Spring (1573)"),
        ("HokusaiPoppies", "Katsushika Hokusai, Poppies (1833-1834)"),
    )),
)


def sh(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def package_root(name: str, debs: Path) -> tuple[Path, str]:
    """The unpacked package (downloaded with apt-get into ``debs`` if no .deb is there) and its version."""
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{name}_*.deb"))
    if not found:
        print(f"apt-get download {name}", file=sys.stderr)
        sh("apt-get", "download", name, cwd=debs)
        found = sorted(debs.glob(f"{name}_*.deb"))
    deb = found[-1]
    root = debs / "unpacked" / name
    if not root.is_dir():
        root.parent.mkdir(parents=True, exist_ok=True)
        sh("dpkg-deb", "-x", str(deb), str(root))
    return root, sh("dpkg-deb", "-f", str(deb), "Version").strip()


def rcc_files(path: Path) -> dict[str, bytes]:
    """{path: bytes} of a Qt binary resource file (.rcc, format versions 1-3; zlib-compressed entries)."""
    b = path.read_bytes()
    if b[:4] != b"qres":
        raise ValueError(f"{path} is not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    size = 14 if version == 1 else 22
    out: dict[str, bytes] = {}

    def name(off: int) -> str:
        (n,) = struct.unpack(">H", b[names + off:names + off + 2])
        return b[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    def walk(i: int, prefix: str) -> None:
        base = tree + i * size
        noff, flags = struct.unpack(">IH", b[base:base + 6])
        here = f"{prefix}/{name(noff)}" if i else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", b[base + 6:base + 14])
            for child in range(first, first + count):
                walk(child, here)
            return
        (doff,) = struct.unpack(">I", b[base + 10:base + 14])
        (n,) = struct.unpack(">I", b[data + doff:data + doff + 4])
        blob = b[data + doff + 4:data + doff + 4 + n]
        out[here.lstrip("/")] = zlib.decompress(blob[4:]) if flags & 1 else blob

    walk(0, "")
    return out


def gcompris_paintings(root: Path) -> dict[str, Image.Image]:
    """Whole paintings reassembled from GCompris' puzzle pieces: each board gives every piece's centre."""
    files = rcc_files(root / GCOMPRIS_RCC / "paintings.rcc")
    out: dict[str, Image.Image] = {}
    for key in sorted(k for k in files if "/board/" in k and k.endswith(".qml")):
        text = files[key].decode()
        width = int(re.search(r'"width"\s*:\s*(\d+)', text).group(1))
        height = int(re.search(r'"height"\s*:\s*(\d+)', text).group(1))
        pieces = re.findall(r'"pixmapfile"\s*:\s*"(image/[^"]+\.webp)",\s*"x"\s*:\s*"([\d.]+)",\s*"y"\s*:\s*"([\d.]+)"',
                            text)
        if not pieces:
            continue
        folder = key.rsplit("/board/", 1)[0]
        canvas = Image.new("RGBA", (width, height))
        for file, x, y in pieces:
            piece = Image.open(io.BytesIO(files[f"{folder}/{file}"])).convert("RGBA")
            cx, cy = float(x) * width, float(y) * height
            canvas.alpha_composite(piece, (round(cx - piece.width / 2), round(cy - piece.height / 2)))
        opaque = canvas.getchannel("A").point(lambda v: 255 if v > 250 else 0).getbbox()
        stem = re.sub(r"(_[a-z]?\d+|[-_]\d)\.webp$", "", Path(pieces[0][0]).name)
        out[stem] = canvas.crop(opaque).convert("RGB")
    return out


def gcompris_erase(root: Path) -> dict[str, bytes]:
    files = rcc_files(root / GCOMPRIS_RCC / "erase.rcc")
    return {Path(k).name: v for k, v in files.items() if "/resource/" in k}


def trim_frame(img: Image.Image, dark: float = 12.0) -> Image.Image:
    """Cut a black scanning frame: edge rows and columns whose mean is below ``dark`` (0-255)."""
    import numpy as np

    a = np.asarray(img.convert("L"), np.float32)
    rows, cols = np.flatnonzero(a.mean(1) >= dark), np.flatnonzero(a.mean(0) >= dark)
    if len(rows) < a.shape[0] // 2 or len(cols) < a.shape[1] // 2:
        return img
    return img.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))


def library_photo(module: str, name: str) -> Path:
    if module == "skimage":
        import skimage.data
        return Path(skimage.data.__file__).parent / name
    import sklearn.datasets
    return Path(sklearn.datasets.__file__).parent / "images" / name


def write(img: Image.Image, out: Path, long_side: int) -> tuple[int, int, str]:
    img = img.convert("RGB")
    if max(img.size) > long_side:
        img.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    out.write_bytes(buf.getvalue())
    return img.width, img.height, hashlib.sha256(buf.getvalue()).hexdigest()


def build(kind: str, out: Path, debs: Path, long_side: int, crop: int = 768, seed: int = 0) -> list[dict[str, str]]:
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    roots: dict[str, tuple[Path, str]] = {}

    def source(pkg: str) -> tuple[Path, str]:
        if pkg not in roots:
            roots[pkg] = package_root(pkg, debs)
        return roots[pkg]

    def add(img: Image.Image, stem: str, pkg: str, version: str, where: str, author: str, licence: str) -> None:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem) + ".jpg"
        img = img.convert("RGB")
        w, h, digest = write(img, out / name, long_side)
        rows.append({"file": name, "package": pkg, "version": version, "source": where, "author": author,
                     "licence": licence, "width": str(w), "height": str(h), "sha256": digest})
        if kind != "photos" or min(img.size) < crop:
            return
        rng = random.Random(f"{seed}:{name}")
        for k in range(max(1, img.width * img.height // (crop * crop))):
            x, y = rng.randrange(img.width - crop + 1), rng.randrange(img.height - crop + 1)
            part = f"{name[:-4]}-crop{k:02d}.jpg"
            w, h, digest = write(img.crop((x, y, x + crop, y + crop)), out / part, crop)
            rows.append({**rows[-1], "file": part, "source": f"{where} (crop {x},{y} {crop}x{crop})",
                         "width": str(w), "height": str(h), "sha256": digest})

    def library(entries: tuple[tuple[str, str, str, str], ...]) -> None:
        for module, file, author, licence in entries:
            mod = __import__("skimage" if module == "skimage" else "sklearn")
            add(Image.open(library_photo(module, file)), f"{module}-{Path(file).stem}", f"scikit-{'image' if module == 'skimage' else 'learn'}",
                mod.__version__, file, author, licence)

    def from_packages(entries: tuple[tuple[str, str, str, str], ...]) -> None:
        for pkg, path, author, licence in entries:
            if pkg == "skimage":
                library(((pkg, path, author, licence),))
                continue
            root, version = source(pkg)
            if path.startswith("painting/"):
                key = path.split("/", 1)[1]
                img = gcompris_paintings(root)[key]
                where = f"{GCOMPRIS_RCC}paintings.rcc (reassembled: {key})"
            elif path.startswith("erase/"):
                img = Image.open(io.BytesIO(gcompris_erase(root)[Path(path).name]))
                where = f"{GCOMPRIS_RCC}erase.rcc ({Path(path).name})"
            else:
                img, where = Image.open(root / path), path
            if kind != "photos":
                img = trim_frame(img.convert("RGB"))
            stem = Path(path).stem if not path.startswith("painting/") else path.split("/", 1)[1]
            if pkg == "plasma-workspace-wallpapers":
                stem = path.split("/")[3]
            add(img, stem, pkg, version, where, author, licence)

    if kind == "photos":
        from_packages(PHOTOS)
        library(LIBRARY_PHOTOS)
    elif kind == "paintings":
        from_packages(PAINTINGS)
    else:
        from_packages(JUDGE_PHOTOS)
        styles = out / "styles"
        styles.mkdir(exist_ok=True)
        before = len(rows)
        from_packages(JUDGE_STYLES)
        for row in rows[before:]:
            (out / row["file"]).rename(styles / row["file"])
            row["file"] = f"styles/{row['file']}"
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("photos", "paintings", "judge"))
    p.add_argument("out", type=Path)
    p.add_argument("--debs", type=Path, default=Path("data/debs"), help="folder of .deb files (downloaded if missing)")
    p.add_argument("--long-side", type=int, default=1024, help="long side of the whole images (default 1024)")
    p.add_argument("--crop", type=int, default=768, help="side of the photos' random crops (default 768)")
    p.add_argument("--seed", type=int, default=0, help="seed of the crop positions")
    a = p.parse_args()
    rows = build(a.kind, a.out, a.debs, a.long_side, a.crop, a.seed)
    mpx = sum(int(r["width"]) * int(r["height"]) for r in rows) / 1e6
    print(f"$ python scripts/build_datasets.py {a.kind} {a.out}")
    print(f"{len(rows)} images, {mpx:.1f} Mpx, manifest: {a.out / 'manifest.csv'}")


if __name__ == "__main__":
    main()
