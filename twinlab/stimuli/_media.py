"""Pictures and clips behind the natural families, turned into luminance on a render grid.

Sources (the ``source`` field of :mod:`twinlab.stimuli.natural`)
----------------------------------------------------------------
``"photos"``  the real photographs that ship inside the scikit-image wheel (:data:`PHOTOS`),
``"videos"``  the clips in ``twinlab.paths.shared_data("natural_videos")`` (sorted by name),
``"auto"``    ``"videos"`` where that folder holds clips, else ``"photos"``,
a path        one image file, one video file, or a folder of them (not recursive; files
              with a known image or video extension, sorted by name).

:func:`items` lists a source as :class:`Item` s (``kind`` "photo", "image" or "video").

Luminance
---------
Luma of the gamma-encoded RGB with the Rec. 709 weights :data:`LUMA` (0.2126, 0.7152,
0.0722: the sRGB primaries, and the weights of ``skimage.color.rgb2gray``), scaled to
[0, 1] (8-bit / 255, 16-bit / 65535); gray pictures are taken as they are, alpha dropped.
Video frames are converted to RGB by ffmpeg first (``rgb24``), so a YUV clip gives back
its own luma up to the YUV -> RGB round trip.

Cover
-----
A picture is scaled, aspect ratio preserved, by ``scale = max(H / h, W / w)`` so that it just
covers the ``H x W`` grid, and the middle is cut out (centre crop). Stills: Gaussian
prefilter of sigma ``(1 / scale - 1) / 2`` source pixels when shrinking (no aliasing), then
bilinear samples at the pixel centres (:func:`sample`), exact to a fraction of a pixel.
Video frames: ffmpeg's scaler (area averaging when shrinking, bilinear when enlarging) to
the cover size rounded to whole pixels, then a whole-pixel centre crop (aspect error under
half a pixel; anamorphic clips are corrected by their sample aspect ratio).

Video time
----------
:class:`ClipInfo` holds the presentation time of every frame from the packet timestamps
(read without decoding). A clip whose timestamps all sit within a quarter frame of
``i / average_rate`` is taken as exactly constant-rate; otherwise (variable rate, or AVI
files with dropped frames) the timestamps themselves are the timeline, as a player would
show it. A frame is on screen from its time until the next frame's; output frame ``k`` at
``fps`` shows the frame on screen at ``k / fps`` (sample and hold, no blending), so a
15 fps clip at 30 Hz shows every frame twice.

Decoding streams: :func:`read_frames` decodes only up to the last frame it needs, keeps
the decoder open (so consecutive trials continue where the last stopped) and seeks to the
nearest keyframe for jumps, so memory is one trial's frames at render size, whatever the
clip's length or resolution.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from ..errors import InputError
from ..paths import shared_data

__all__ = [
    "LUMA",
    "PHOTOS",
    "Item",
    "ClipInfo",
    "check_source",
    "items",
    "clip_info",
    "still_luminance",
    "still_on_grid",
    "read_frames",
    "sample",
    "antialias",
    "to_luminance",
    "close_readers",
]

LUMA = np.array([0.2126, 0.7152, 0.0722])

#: scikit-image photographs of real scenes and objects (text, histology, starfields and
#: binary masks left out), in the order their ``image_id`` numbers them.
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "grass", "gravel", "brick", "moon", "coins", "clock")

KEYWORDS = ("photos", "videos", "auto")
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"})
VIDEO_EXTS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv", ".gif", ".y4m"}
)

# decoding up to this many seconds past the decoder's position is cheaper than a seek
_SEEK_AFTER_S = 4.0


@dataclass(frozen=True)
class Item:
    """One picture or clip of a source: ``kind`` "photo" (``ref`` names a scikit-image
    photograph), "image" or "video" (``ref`` is a file path)."""

    name: str
    kind: str
    ref: str

    @property
    def still(self) -> bool:
        return self.kind != "video"


def videos_dir() -> Path:
    return shared_data("natural_videos")


def _media_files(folder: Path, exts: frozenset) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts)


def _shared_clips() -> list[Path]:
    d = videos_dir()
    return _media_files(d, VIDEO_EXTS) if d.is_dir() else []


def check_source(source: str, family: str) -> None:
    """Raise :class:`InputError` unless ``source`` is a keyword or an existing path."""
    if source in ("photos", "auto"):
        return
    if source == "videos":
        if not _shared_clips():
            raise InputError(
                f"{family}: source 'videos' needs the clips in {videos_dir()}, which is missing or empty "
                "(set TWINLAB_DATA, or use source='photos' or a path)"
            )
        return
    if not source:
        raise InputError(f"{family}: source must be 'photos', 'videos', 'auto' or a path, got ''")
    if not Path(source).expanduser().exists():
        raise InputError(f"{family}: source {source!r} is neither 'photos', 'videos', 'auto' nor an existing path")


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def items(source: str, family: str) -> tuple[Item, ...]:
    """The pictures and clips of a source, in a fixed order (``image_id`` / ``clip_id``)."""
    check_source(source, family)
    if source == "auto":
        source = "videos" if _shared_clips() else "photos"
    if source == "photos":
        return tuple(Item(n, "photo", n) for n in PHOTOS)
    path = videos_dir() if source == "videos" else Path(source).expanduser()
    return _listing(str(path.resolve()), _stamp(path), family)


@lru_cache(maxsize=16)
def _listing(path: str, stamp: tuple[int, int], family: str) -> tuple[Item, ...]:
    p = Path(path)
    files = _media_files(p, IMAGE_EXTS | VIDEO_EXTS) if p.is_dir() else [p]
    if not files:
        raise InputError(f"{family}: folder {path} holds no image or video files")
    return tuple(Item(f.name, "image" if f.suffix.lower() in IMAGE_EXTS else "video", str(f)) for f in files)


# -- stills ---------------------------------------------------------------------------------


def to_luminance(pixels: np.ndarray) -> np.ndarray:
    """Picture array ``[h, w]`` or ``[h, w, channels]`` -> luminance ``[h, w]`` float32 in [0, 1]."""
    a = np.asarray(pixels)
    scale = float(np.iinfo(a.dtype).max) if a.dtype.kind in "ui" else 1.0
    a = a.astype(np.float32) / np.float32(scale)
    if a.ndim == 3:
        a = a[..., :3] @ LUMA.astype(np.float32) if a.shape[-1] >= 3 else a[..., 0]
    if a.ndim != 2:
        raise InputError(f"a picture must be 2-D gray or 3-D colour, got shape {np.shape(pixels)}")
    return np.clip(a, 0.0, 1.0)


def _read_image(path: str) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I"):  # 16-bit pictures
                return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
            if im.mode not in ("L", "LA", "RGB", "RGBA", "F"):
                im = im.convert("RGB")
            return np.asarray(im)
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"cannot read image {path}: {e}") from None


@lru_cache(maxsize=4)
def _still(item: Item, stamp: tuple[int, int] | None) -> np.ndarray:
    if item.kind == "photo":
        import skimage.data  # optional: only the built-in photos need scikit-image

        pixels = getattr(skimage.data, item.ref)()
    else:
        pixels = _read_image(item.ref)
    lum = to_luminance(pixels)
    lum.setflags(write=False)
    return lum


def still_luminance(item: Item) -> np.ndarray:
    """Full-resolution luminance ``[h, w]`` of a photo or image file (cached, read-only)."""
    return _still(item, None if item.kind == "photo" else _stamp(Path(item.ref)))


@lru_cache(maxsize=64)
def _on_grid(item: Item, stamp, shape: tuple[int, int]) -> np.ndarray:
    if item.still:
        out = cover(still_luminance(item), shape)
    else:
        info = clip_info(item.ref)
        out = read_frames(info, np.array([info.n_frames // 2]), shape)[0]
    out.setflags(write=False)
    return out


def still_on_grid(item: Item, shape: tuple[int, int]) -> np.ndarray:
    """``item`` covering a grid of ``shape`` ``[H, W]`` (a clip gives its middle frame)."""
    stamp = None if item.kind == "photo" else _stamp(Path(item.ref))
    return _on_grid(item, stamp, (int(shape[0]), int(shape[1])))


def antialias(img: np.ndarray, scale: float) -> np.ndarray:
    """Blur before sampling at ``scale`` output pixels per source pixel (only when < 1)."""
    if scale >= 1:
        return img
    return gaussian_filter(img, (1.0 / scale - 1.0) / 2.0, mode="nearest").astype(np.float32)


def cover(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Scale ``img`` ``[h, w]`` to just cover ``shape`` (aspect kept) and cut out the middle."""
    h, w = img.shape
    H, W = shape
    k = max(H / h, W / w)
    rows = (h - 1) / 2 + (np.arange(H) - (H - 1) / 2) / k
    cols = (w - 1) / 2 + (np.arange(W) - (W - 1) / 2) / k
    return sample(antialias(img, k), rows[None], cols[None])[0]


def sample(img: np.ndarray, rows: np.ndarray, cols: np.ndarray, chunk_bytes: int = 1 << 25) -> np.ndarray:
    """Bilinear samples of ``img`` ``[h, w]`` on per-frame separable grids.

    ``rows`` ``[n, H]`` and ``cols`` ``[n, W]`` are fractional pixel indices (0 = centre of the
    first pixel), clamped to the edge. Returns ``[n, H, W]`` float32: frame ``f`` pixel
    ``(i, j)`` is ``img`` at ``(rows[f, i], cols[f, j])``. Separable, so a frame costs
    ``H * (w + W)`` operations; done in chunks of frames to bound memory.
    """
    img = np.asarray(img, dtype=np.float32)
    h, w = img.shape
    n, H = rows.shape
    W = cols.shape[1]
    out = np.empty((n, H, W), dtype=np.float32)
    r0, r1, fr = _bracket(rows, h)
    c0, c1, fc = _bracket(cols, w)
    step = max(1, chunk_bytes // max(1, H * max(w, W) * 4))
    for a in range(0, n, step):
        s = slice(a, a + step)
        f = fr[s][..., None]
        band = img[r0[s]] * (1 - f) + img[r1[s]] * f  # [m, H, w]
        g = fc[s][:, None, :]
        left = np.take_along_axis(band, np.broadcast_to(c0[s][:, None, :], (band.shape[0], H, W)), axis=2)
        right = np.take_along_axis(band, np.broadcast_to(c1[s][:, None, :], (band.shape[0], H, W)), axis=2)
        out[s] = left * (1 - g) + right * g
    return out


def _bracket(pos: np.ndarray, size: int):
    p = np.clip(np.asarray(pos, dtype=np.float64), 0, size - 1)
    i0 = np.floor(p).astype(np.intp)
    i1 = np.minimum(i0 + 1, size - 1)
    return i0, i1, (p - i0).astype(np.float32)


# -- video ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ClipInfo:
    """Timeline of a video file, from its packets (no decoding).

    ``times_s`` ``[n_frames]``: when each frame goes on screen, from the first frame;
    ``duration_s``: when the last one goes off; ``pts``: presentation timestamps in stream
    units, sorted (``None`` where the file has none; frames are then counted in order).
    """

    path: str
    times_s: np.ndarray
    duration_s: float
    pts: np.ndarray | None
    width: int
    height: int
    aspect: float  # sample (pixel) aspect ratio, display width = width * aspect
    constant_rate: bool

    @property
    def n_frames(self) -> int:
        return len(self.times_s)

    def frames_at(self, fps: float) -> int:
        """Output frames at ``fps`` that the whole clip lasts."""
        return max(1, int(np.ceil(self.duration_s * fps - 1e-6)))

    def source_index(self, k: np.ndarray, fps: float) -> np.ndarray:
        """Source frame on screen at output frame(s) ``k`` (times ``k / fps``)."""
        t = np.asarray(k, dtype=np.float64) / fps
        i = np.searchsorted(self.times_s, t + 1e-6, side="right") - 1
        return np.clip(i, 0, self.n_frames - 1)


def clip_info(path: str) -> ClipInfo:
    """Timeline of a video file (cached per file version); :class:`InputError` if unreadable."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"video {path} does not exist")
    return _clip_info(str(p.resolve()), _stamp(p))


def _open(path: str):
    import av  # optional: only video files need PyAV

    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"cannot open video {path}: {e}") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path} has no video stream")
    return container


@lru_cache(maxsize=32)
def _clip_info(path: str, stamp: tuple[int, int]) -> ClipInfo:
    import av  # optional: only video files need PyAV

    container = _open(path)
    try:
        st = container.streams.video[0]
        pts, dur = [], []
        for packet in container.demux(st):
            if packet.size == 0:
                continue
            pts.append(packet.pts)
            dur.append(packet.duration or 0)
        rate = st.average_rate or st.guessed_rate or st.base_rate
        tb = st.time_base
        sar = st.sample_aspect_ratio
        width, height = st.width, st.height
    except av.error.FFmpegError as e:
        raise InputError(f"cannot read video {path}: {e}") from None
    finally:
        container.close()
    n = len(pts)
    if n == 0 or not width or not height:
        raise InputError(f"video {path} has no frames")
    rate = float(rate) if rate else 30.0
    regular = np.arange(n) / rate
    if any(p is None for p in pts) or tb is None:
        return ClipInfo(path, regular, n / rate, None, width, height, _aspect(sar), True)
    order = np.argsort(pts, kind="stable")
    pts_a = np.asarray(pts, dtype=np.int64)[order]
    times = (pts_a - pts_a[0]) * float(Fraction(tb))
    if np.all(np.abs(times - regular) < 0.25 / rate):
        return ClipInfo(path, regular, n / rate, pts_a, width, height, _aspect(sar), True)
    last = dur[int(order[-1])] * float(Fraction(tb))
    if last <= 0:
        last = float(np.median(np.diff(times))) if n > 1 else 1.0 / rate
    return ClipInfo(path, times, float(times[-1] + last), pts_a, width, height, _aspect(sar), False)


def _aspect(sar) -> float:
    try:
        a = float(sar) if sar else 1.0
    except (TypeError, ValueError, ZeroDivisionError):
        a = 1.0
    return a if a > 0 else 1.0


class _Reader:
    """An open decoder on one clip that remembers where it is."""

    def __init__(self, info: ClipInfo):
        self.info = info
        self._index = None if info.pts is None else {int(p): i for i, p in enumerate(info.pts)}
        self.container = None
        self._restart()

    def _restart(self) -> None:
        self.close()
        self.container = _open(self.info.path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self._frames = self.container.decode(self.stream)
        self.next = 0

    def _seek(self, i: int) -> None:
        if self._index is None or i == 0:
            self._restart()
            return
        self.container.seek(int(self.info.pts[i]), stream=self.stream, backward=True, any_frame=False)
        self._frames = self.container.decode(self.stream)
        self.next = -1  # unknown until a frame arrives

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    def _frame_index(self, frame) -> int | None:
        if self._index is not None and frame.pts is not None and int(frame.pts) in self._index:
            return self._index[int(frame.pts)]
        return self.next if self.next >= 0 else None

    def read(self, want: np.ndarray, shape: tuple[int, int], allow_seek: bool = True) -> np.ndarray:
        import av  # optional: only video files need PyAV

        out = np.empty((len(want), *shape), dtype=np.float32)
        got = np.zeros(len(want), dtype=bool)
        first, last = int(want[0]), int(want[-1])
        gap = _SEEK_AFTER_S * self.info.n_frames / max(self.info.duration_s, 1e-9)
        if self.next < 0 or self.next > first or first - self.next > gap:
            self._seek(first) if allow_seek else self._restart()
        seeked = self.next < 0
        try:
            for frame in self._frames:
                i = self._frame_index(frame)
                if seeked:
                    if i is None or i > first:  # the seek cannot be trusted: decode from the start
                        self._restart()
                        return self.read(want, shape, allow_seek=False)
                    seeked = False
                self.next = i + 1
                j = int(np.searchsorted(want, i))
                if j < len(want) and want[j] == i:
                    out[j] = _frame_on_grid(frame, shape, self.info.aspect)
                    got[j] = True
                if i >= last:
                    break
        except av.error.FFmpegError as e:
            raise InputError(f"cannot decode video {self.info.path}: {e}") from None
        if not got.all():
            # the decoder gave fewer frames than the packets promised: hold the last one
            if not got.any():
                self._restart()
                raise InputError(f"could not decode frames {first}..{last} of {self.info.path}")
            idx = np.maximum.accumulate(np.where(got, np.arange(len(want)), -1))
            idx[idx < 0] = int(np.argmax(got))
            out = out[idx]
            self.next = -1
        return out


def _frame_on_grid(frame, shape: tuple[int, int], aspect: float) -> np.ndarray:
    H, W = shape
    h, w = frame.height, frame.width * aspect
    k = max(H / h, W / w)
    hc, wc = max(H, int(round(h * k))), max(W, int(round(w * k)))
    rgb = frame.reformat(
        width=wc, height=hc, format="rgb24", interpolation="AREA" if k < 1 else "BILINEAR"
    ).to_ndarray()
    r0, c0 = (hc - H) // 2, (wc - W) // 2
    rgb = rgb[r0 : r0 + H, c0 : c0 + W]
    return rgb @ (LUMA / 255.0).astype(np.float32)


_READERS: OrderedDict[str, _Reader] = OrderedDict()
_MAX_READERS = 2


def read_frames(info: ClipInfo, want: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Luminance of source frames ``want`` (sorted, unique indices) covering ``shape``:
    ``[len(want), H, W]`` float32."""
    want = np.asarray(want, dtype=np.int64)
    key = info.path
    reader = _READERS.pop(key, None)
    if reader is None or reader.info is not info:
        if reader is not None:
            reader.close()
        reader = _Reader(info)
    _READERS[key] = reader
    while len(_READERS) > _MAX_READERS:
        _READERS.popitem(last=False)[1].close()
    return reader.read(want, (int(shape[0]), int(shape[1])))


def close_readers() -> None:
    """Close the open decoders (they reopen on demand)."""
    while _READERS:
        _READERS.popitem()[1].close()
