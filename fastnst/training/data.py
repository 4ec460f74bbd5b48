"""Content images for training: a LightningDataModule over local folders, parquet files and the HF hub.

``data`` may be

- ``"coco"``: COCO 2014 train images (what Johnson et al. 2016 trained on) from the Hugging Face hub
  as parquet (:data:`COCO_HUB_ID`), streamed: training starts without downloading the whole set;
- any hub dataset id (``owner/name``) with an image column, also streamed (the column is detected);
- a local folder of images, flat or nested (read from a file list: random access, exact shuffling);
- a local ``.parquet`` file, a folder of them, or a glob such as ``data/*.parquet`` (streamed with
  Hugging Face ``datasets``, exactly like a hub dataset).

Each training sample is a random resized crop of ``image_size``² pixels. Unreadable images are
skipped with a warning and counted, never fatal; a source with no usable image raises
:class:`~fastnst.errors.InputError` from :meth:`ContentDataModule.check` before training starts.
The first few usable images are held out (when the source has enough) as a fixed preview set.
Every image is decoded through :mod:`fastnst.image` (EXIF orientation, decompression-bomb cap).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, get_worker_info

from fastnst import checks
from fastnst import image as fimage
from fastnst.errors import FastNSTError, InputError
# The sources themselves are torch-free and shared with dataset augmentation (fastnst.sources).
from fastnst.sources import COCO_HUB_ID, find_image_column, open_stream, resolve_source  # noqa: F401
from fastnst.sources import describe as _describe, image_source as _image_source

log = logging.getLogger(__name__)

# Random resized crop: fraction of the image area and aspect-ratio range of the crop before it is
# resized to image_size². Chosen: at least half the area keeps objects near their natural scale
# (torchvision's (0.08, 1) zooms into blurry patches); the ratio range is torchvision's default.
CROP_SCALE: tuple[float, float] = (0.5, 1.0)
CROP_RATIO: tuple[float, float] = (3 / 4, 4 / 3)
# Streaming shuffle buffer (images kept in memory, encoded). Chosen: 1000 encoded COCO images are ~160 MB.
SHUFFLE_BUFFER = 1000
# How many stream rows to read while looking for the preview images before giving up.
_PEEK_LIMIT = 256


def default_num_workers() -> int:
    """Data loader workers: one per spare CPU core, at most 4 (chosen: decoding + crop is cheap next to a step)."""
    return max(0, min(4, checks.available_cpus() - 1))


# ---------------------------------------------------------------------------------------- transforms


def random_crop_box(width: int, height: int, generator: torch.Generator,
                    scale: tuple[float, float] = CROP_SCALE,
                    ratio: tuple[float, float] = CROP_RATIO) -> tuple[int, int, int, int]:
    """A random crop box (left, top, right, bottom) covering ``scale`` of the area, aspect in ``ratio``.

    Same sampling as torchvision's RandomResizedCrop (10 tries, then the largest centred crop that fits).
    """
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        u = torch.rand(3, generator=generator).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_lo + (log_hi - log_lo) * u[1])
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            return left, top, left + w, top + h
    return center_crop_box(width, height, ratio)


def center_crop_box(width: int, height: int, ratio: tuple[float, float] = (1.0, 1.0)) -> tuple[int, int, int, int]:
    """The largest centred box whose aspect ratio lies in ``ratio``."""
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif aspect > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def load_crop(source: Any, size: int, generator: torch.Generator | None) -> torch.Tensor:
    """Decode ``source`` and return a (3, size, size) float tensor in [0, 1].

    With a generator: a random resized crop; without: the centred square (for previews).
    Raises InputError for anything unreadable.
    """
    img = fimage.load_rgb(source)
    box = (random_crop_box(img.width, img.height, generator) if generator is not None
           else center_crop_box(img.width, img.height))
    # One resampling step crops and resizes (Pillow's resize antialiases when shrinking).
    img = img.resize((size, size), Image.Resampling.BILINEAR, box=box)
    return fimage.to_tensor(img)[0]


# ------------------------------------------------------------------------------------------ datasets


def sample_seed(seed: int, epoch: int, rank: int, position: int) -> int:
    """The crop seed of one sample: a hash of (run seed, epoch, rank, position in the epoch), so a sample's
    crop does not depend on data loader workers, prefetching or where a run was resumed."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{rank}/{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class ResumableSampler(Sampler):
    """Epoch permutations drawn from (seed, epoch) and a position that a checkpoint can restore.

    Yields ``(file index, crop seed)`` keys for :class:`FolderImages`. Training batch ``g`` (counted over
    the whole run, per rank) is always the same images with the same crops, whatever happened before:
    resuming at batch ``g`` (:attr:`next_batch`) reproduces an uninterrupted run exactly. Under DDP each
    rank takes its own slice of the same permutation (fastnst shards; Lightning's sampler is not used).
    """

    def __init__(self, num_items: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 start_batch: int = 0) -> None:
        self.num_items, self.batch_size, self.seed = int(num_items), int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), max(1, int(world_size))
        self.next_batch = int(start_batch)
        per_rank = self.num_items // self.world_size
        self.per_rank = per_rank if per_rank > 0 else self.num_items
        self.partial = self.per_rank < self.batch_size  # fewer images than a batch: one short batch per epoch
        self.batches_per_epoch = 1 if self.partial else self.per_rank // self.batch_size

    def __len__(self) -> int:
        return self.per_rank if self.partial else self.batches_per_epoch * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, position = divmod(self.next_batch, self.batches_per_epoch)
        self.next_batch = (epoch + 1) * self.batches_per_epoch  # the next iteration starts the next epoch
        gen = torch.Generator().manual_seed(sample_seed(self.seed, epoch, -1, 0))
        order = torch.randperm(self.num_items, generator=gen).tolist()
        if self.world_size > 1 and self.num_items >= self.world_size:
            order = order[self.rank * self.per_rank:(self.rank + 1) * self.per_rank]
        first = 0 if self.partial else position * self.batch_size
        last = len(self) if not self.partial else self.per_rank
        for k in range(first, last):
            yield order[k], sample_seed(self.seed, epoch, self.rank, k)


class FolderImages(Dataset):
    """Random resized crops of image files; an unreadable file is skipped (the next one is used).

    Items are ``(image (3, S, S), skipped)`` where ``skipped`` counts files passed over for this item.
    An index is a file number (crop randomness from torch's RNG) or a ``(file number, crop seed)`` key
    from :class:`ResumableSampler` (deterministic crops).
    """

    def __init__(self, files: list[Path], image_size: int, seed: int = 0) -> None:
        self.files = list(files)
        self.image_size = image_size
        self.seed = seed

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: Any) -> tuple[torch.Tensor, int]:
        if isinstance(index, (tuple, list)):
            index, crop_seed = int(index[0]), int(index[1])
        else:  # crop randomness from torch's RNG: seeded per worker and epoch by the DataLoader
            crop_seed = int(torch.randint(0, 2**62, (1,)))
        gen = torch.Generator().manual_seed(crop_seed)
        for attempt in range(len(self.files)):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                return load_crop(path, self.image_size, gen), attempt
            except FastNSTError as exc:
                log.warning("skipping unreadable image: %s", exc)
        raise InputError("none of the data images can be read any more; check the data folder")


class StreamImages(IterableDataset):
    """Random resized crops from a streaming ``datasets`` source; unreadable rows skipped and counted.

    Shuffles with a buffer (a new order each epoch) and splits shards between data loader workers
    (``datasets`` does that) and between processes (``split_dataset_by_node``) under DDP.
    """

    def __init__(self, kind: str, source: Any, image_size: int, split: str = "train", skip: int = 0,
                 shuffle: bool = True, shuffle_buffer: int = SHUFFLE_BUFFER, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        self.kind, self.source, self.split = kind, source, split
        self.image_size, self.skip = image_size, skip
        self.shuffle, self.shuffle_buffer, self.seed = shuffle, shuffle_buffer, seed
        self.rank, self.world_size = rank, world_size
        self._epoch = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        from datasets.distributed import split_dataset_by_node

        info = get_worker_info()
        if info is None:
            self._epoch += 1
            epoch_seed = (self.seed * 1_000_003 + self._epoch) % 2**32
            crop_seed = epoch_seed
        else:  # worker seed = base seed (new each epoch, shared by the workers) + worker id
            epoch_seed = (info.seed - info.id) % 2**32
            crop_seed = info.seed % 2**63
        ds, column = open_stream(self.kind, self.source, self.split)
        if self.skip:
            ds = ds.skip(self.skip)
        if self.shuffle:
            ds = ds.shuffle(seed=epoch_seed, buffer_size=self.shuffle_buffer)
        if self.world_size > 1:
            ds = split_dataset_by_node(ds, rank=self.rank, world_size=self.world_size)
        gen = torch.Generator().manual_seed(crop_seed)
        skipped = 0
        for i, row in enumerate(ds):
            value = row[column]
            try:
                img = load_crop(_image_source(value), self.image_size, gen)
            except FastNSTError as exc:
                skipped += 1
                log.warning("skipping unreadable image %s: %s", _describe(value, i), exc)
                continue
            yield img, skipped
            skipped = 0


# --------------------------------------------------------------------------------------- data module


class ContentDataModule(pl.LightningDataModule):
    """Training content images and a fixed preview set.

    The sizes and counts are taken as given: a run passes them checked (:meth:`from_config`,
    :meth:`fastnst.training.config.RunConfig.check`); :meth:`check` checks the data source itself.

    Args:
        data: "coco", a Hugging Face dataset id, a local folder of images, or local parquet file(s).
        image_size: side of the square training crops in pixels (paper: 256).
        batch_size: images per step (paper: 4).
        num_workers: data loader processes; None = one per spare core, at most 4.
        num_previews: images held out for the preview grid (chosen: 4 fit one row).
        split: split of a hub dataset.
        shuffle_buffer: streaming shuffle buffer size (images).
        seed: seed of the streaming shuffle order.
    """

    def __init__(self, data: str = "coco", image_size: int = 256, batch_size: int = 4,
                 num_workers: int | None = None, num_previews: int = 4, split: str = "train",
                 shuffle_buffer: int = SHUFFLE_BUFFER, seed: int = 0) -> None:
        super().__init__()
        self.data = str(data)
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.num_workers = default_num_workers() if num_workers is None else int(num_workers)
        self.num_previews = int(num_previews)
        self.split = split
        self.shuffle_buffer = int(shuffle_buffer)
        self.seed = int(seed)
        self.kind: str | None = None
        self.source: Any = None
        self.previews: torch.Tensor | None = None
        self.preview_names: list[str] = []
        self.skipped = 0  # unreadable images met while checking the source
        self._train_files: list[Path] = []
        self._stream_skip = 0
        self._resume_batch = 0  # training batches already consumed (restored from a checkpoint)
        self.sampler: ResumableSampler | None = None

    @classmethod
    def from_config(cls, config: Any) -> "ContentDataModule":
        """The content data of a checked run config (:class:`~fastnst.training.config.RunConfig`)."""
        return cls(config.data, image_size=config.image_size, batch_size=config.batch_size,
                   num_workers=config.num_workers, num_previews=config.num_previews, split=config.data_split,
                   seed=config.seed)

    # -- checks before training --------------------------------------------------------------------

    def check(self) -> "ContentDataModule":
        """Resolve the source and read the preview images; raises InputError when nothing is usable.

        Idempotent. Called before the Trainer is built so bad data fails fast and writes nothing.
        """
        if self.kind is not None:
            return self
        kind, source = resolve_source(self.data)
        if kind == "folder":
            self._check_folder(source)
        else:
            self._check_stream(kind, source)
        self.kind, self.source = kind, source
        return self

    def _check_folder(self, files: list[Path]) -> None:
        previews, names, bad = [], [], 0
        first_good: int | None = None
        consumed = 0
        for i, path in enumerate(files):
            if len(previews) >= max(self.num_previews, 1):
                break
            consumed = i + 1
            try:
                img = load_crop(path, self.image_size, None)
            except FastNSTError as exc:
                bad += 1
                log.warning("skipping unreadable image: %s", exc)
                continue
            first_good = i if first_good is None else first_good
            previews.append(img)
            names.append(str(path))
        if first_good is None:
            raise InputError(f"none of the {len(files)} image files under '{self.data}' can be read "
                             f"(corrupt or unsupported); point --data at readable photos")
        self.skipped = bad
        previews, names = previews[: self.num_previews], names[: self.num_previews]
        # Hold the previews out when enough images remain for training (chosen: at least as many again).
        rest = files[consumed:]
        if self.num_previews and len(rest) >= max(self.num_previews, self.batch_size):
            self._train_files = rest
        else:
            self._train_files = files
            if self.num_previews:
                log.info("only %d images: the preview images are also used for training", len(files))
        self.previews = torch.stack(previews) if previews else None
        self.preview_names = names

    def _check_stream(self, kind: str, source: Any) -> None:
        ds, column = open_stream(kind, source, self.split)
        previews, names, bad, consumed, extra = [], [], 0, 0, 0
        wanted = max(self.num_previews, 1)
        for i, row in enumerate(ds):
            if i >= _PEEK_LIMIT:
                break
            value = row[column]
            if len(previews) >= wanted:
                extra += 1  # a row exists beyond the previews (readability checked in training)
                break
            consumed = i + 1
            try:
                previews.append(load_crop(_image_source(value), self.image_size, None))
                names.append(_describe(value, i))
            except FastNSTError as exc:
                bad += 1
                log.warning("skipping unreadable image %s: %s", _describe(value, i), exc)
        if not previews:
            where = "the first rows" if consumed >= _PEEK_LIMIT else "any row"
            raise InputError(f"no readable image in {where} of '{self.data}' (column '{column}'); "
                             f"check the data source")
        self.skipped = bad
        self._stream_skip = consumed if (self.num_previews and extra) else 0
        previews, names = previews[: self.num_previews], names[: self.num_previews]
        self.previews = torch.stack(previews) if previews else None
        self.preview_names = names

    # -- Lightning hooks ---------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Check the source (no-op when already checked)."""
        self.check()

    def train_dataloader(self) -> DataLoader:
        """Shuffled random resized crops, ``batch_size`` per batch, ``drop_last``."""
        self.check()
        workers = self.num_workers
        common: dict[str, Any] = {"batch_size": self.batch_size, "num_workers": workers, "drop_last": True,
                                  "persistent_workers": workers > 0,
                                  "pin_memory": torch.cuda.is_available()}
        if workers > 0:
            common["prefetch_factor"] = 2
        rank, world = 0, 1
        if self.trainer is not None:
            rank, world = self.trainer.global_rank, self.trainer.world_size
        if self.kind == "folder":
            dataset = FolderImages(self._train_files, self.image_size, self.seed)
            self.sampler = ResumableSampler(len(dataset), self.batch_size, self.seed, rank, world,
                                            start_batch=self._resume_batch)
            common["drop_last"] = not self.sampler.partial
            return DataLoader(dataset, sampler=self.sampler, **common)
        if self._resume_batch:
            log.warning("resuming a streamed dataset starts a fresh shuffle (weights, optimizer and step are "
                        "restored exactly); for a bit-exact resume train from a local folder of images")
        dataset = StreamImages(self.kind or "hub", self.source, self.image_size, self.split, self._stream_skip,
                               True, self.shuffle_buffer, self.seed, rank, world)
        common["persistent_workers"] = False  # a fresh shuffle seed per epoch
        return DataLoader(dataset, **common)

    # -- exact resume: the position in the data order travels in the checkpoint ----------------------

    def state_dict(self) -> dict[str, Any]:
        """The data position for a checkpoint: training batches consumed so far (per rank)."""
        batches = self._resume_batch
        trainer = self._trainer_or_none()
        if trainer is not None:
            try:  # batches started = batches trained when Lightning saves (after the batch, or at the end)
                batches = int(trainer.fit_loop.epoch_loop.batch_progress.total.ready)
            except AttributeError:  # another Lightning layout: optimizer steps x accumulation
                batches = int(trainer.global_step) * int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
        return {"batches": batches, "seed": self.seed, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the data order where a checkpoint left it (before the data loader is built)."""
        if (int(state.get("seed", self.seed)) != self.seed
                or int(state.get("batch_size", self.batch_size)) != self.batch_size):
            log.warning("the checkpoint was trained with another seed or batch size; the data order starts afresh")
            return
        self._resume_batch = int(state.get("batches", 0))
        if self.sampler is not None:
            self.sampler.next_batch = self._resume_batch

    def _trainer_or_none(self) -> Any:
        try:
            return self.trainer
        except (AttributeError, RuntimeError):
            return None

    def describe(self) -> str:
        """One line naming the source, e.g. for logs."""
        self.check()
        if self.kind == "folder":
            return f"{len(self._train_files)} images in '{self.data}'"
        if self.kind == "parquet":
            return f"{len(self.source)} parquet file(s) '{self.data}' (streamed)"
        return f"Hugging Face dataset '{self.source}' split '{self.split}' (streamed)"
