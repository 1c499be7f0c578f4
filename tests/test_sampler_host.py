"""Host-resident sampling (PairSampler(storage="host"), tapkit.ssl.host_store): same crops as the
device store."""

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage

from tapkit import InputError, Movie, normalize
from tapkit.ssl import host_store, movie_arrays
from tapkit.ssl.augment import AugmentConfig
from tapkit.ssl.sampler import PairSampler
from tapkit.ssl.trainer import train_tap


def uint16_movie(t=10, size=(64, 80), seed=0) -> np.ndarray:
    """Smooth random frames stored as uint16, as a microscope writes them."""
    rng = np.random.default_rng(seed)
    frames = ndimage.gaussian_filter(rng.normal(size=(t, *size)), (0, 2, 2))
    return (frames * 3000 + 10000).astype(np.uint16)


def pair(movies, **kw):
    """The same sampler in both modes."""
    return (PairSampler(movies, storage="device", **kw), PairSampler(movies, storage="host", **kw))


def assert_same_batches(
    a: PairSampler, b: PairSampler, n: int = 3, with_events: bool = False
) -> None:
    """n consecutive batches: equal positions and info, crops equal to float32 rounding
    (grid_sample's arithmetic)."""
    for _ in range(n):
        (xa, ia), (xb, ib) = a.sample(with_events=with_events), b.sample(with_events=with_events)
        assert set(ia) == set(ib) and all(torch.equal(ia[k], ib[k]) for k in ia)
        torch.testing.assert_close(xb, xa, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "augment", [False, True, AugmentConfig.level5()], ids=["plain", "default", "level5"]
)
def test_host_mode_gives_the_device_crops_from_a_memory_mapped_tiff(tmp_path, augment):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, uint16_movie())
    device, host = pair(str(path), patch=24, batch_size=64, seed=3, augment=augment)
    # not converted as a whole
    assert isinstance(host.arrays[0], np.memmap) and host.arrays[0].dtype == np.uint16
    # device bytes: tables only in host mode
    assert host.nbytes < 1000 < device.nbytes == 4 * 10 * 65 * 80
    # both kinds of pairs are in a batch: plain (indexed) and warped (resampled)
    if augment is not False:
        _, tf = PairSampler(str(path), patch=24, batch_size=64, seed=3, augment=augment)._plan()
        assert tf.resample.any() and (~tf.resample).any()
    assert_same_batches(device, host, n=3)
    if augment is False:  # the plain crops are exactly the normalised movie's pixels
        crops, info = PairSampler(
            str(path), patch=24, batch_size=8, seed=1, augment=False, storage="host"
        ).sample()
        norm = torch.as_tensor(normalize(uint16_movie()))
        for i in range(8):
            t, y, x = int(info["t"][i]), int(info["y0"][i]), int(info["x0"][i])
            assert torch.equal(crops[i, 0, 0], norm[t, y : y + 24, x : x + 24])


def test_host_mode_several_movies_channels_events_and_background_rejection():
    rng = np.random.default_rng(1)
    # (T, C, Y, X)
    a = np.stack([uint16_movie(12, (48, 56), 1), uint16_movie(12, (48, 56), 2)], 1).astype(
        np.float16
    )
    b = np.stack([uint16_movie(9, (40, 40), 3), uint16_movie(9, (40, 40), 4)], 1).astype(np.float32)
    a[:, :, :, :20] = 0  # an empty region for reject_background
    device, host = pair(
        [a, b],
        patch=16,
        delta=(1, 2),
        batch_size=48,
        seed=7,
        reject_background=0.3,
        background_threshold=0.2,
    )
    assert host.transport == np.float32 and host.channels == 2
    assert_same_batches(device, host, n=3)
    events = (rng.random((12, 48, 48)) > 0.995).astype(np.uint8)
    movies = [
        Movie(uint16_movie(12, (48, 48), 5).astype(np.float32), events=events),
        uint16_movie(9, (40, 40), 6),
    ]
    device, host = pair(movies, patch=16, batch_size=40, seed=2)
    assert_same_batches(device, host, n=2, with_events=True)


@pytest.mark.parametrize("storage", ["device", "host"])
def test_state_dict_resumes_exactly_in_both_modes(storage):
    mov = uint16_movie()
    s = PairSampler(mov, patch=24, batch_size=32, seed=5, storage=storage)
    s.sample(), s.sample()  # host mode: the third batch is already being gathered in the background
    state = s.state_dict()
    expected = [s.sample()[0] for _ in range(2)]
    fresh = PairSampler(mov, patch=24, batch_size=32, seed=5, storage=storage)
    fresh.sample()  # some other state first
    fresh.load_state_dict(state)
    for x in expected:
        assert torch.equal(fresh.sample()[0], x)
    other = PairSampler(
        mov, patch=24, batch_size=32, seed=5, storage="host" if storage == "device" else "device"
    )
    other.load_state_dict(state)  # a checkpoint of one mode resumes in the other
    torch.testing.assert_close(other.sample()[0], expected[0], rtol=0, atol=1e-6)


def test_val_split_repeats_in_host_mode():
    s = PairSampler(
        uint16_movie(), patch=16, batch_size=16, split="val", val_fraction=0.3, storage="host"
    )
    first, again = s.fixed_batches(2), s.fixed_batches(2)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(first, again))


def test_auto_picks_host_when_the_movie_needs_more_than_a_third_of_free_memory(monkeypatch, capsys):
    mov = uint16_movie()
    need = host_store.store_bytes(mov[:, None])
    monkeypatch.setattr(host_store, "free_bytes", lambda device: 3 * need - 1)
    s = PairSampler(mov, patch=16, batch_size=8)
    out = capsys.readouterr().out
    assert (
        s.storage == "host"
        and out.count("\n") == 1
        and "on the host" in out
        and "more than 1/3" in out
    )
    monkeypatch.setattr(host_store, "free_bytes", lambda device: 3 * need)
    assert (
        PairSampler(mov, patch=16, batch_size=8).storage == "device"
        and "on the device" in capsys.readouterr().out
    )
    PairSampler(mov, patch=16, batch_size=8, split="val", storage="host")
    assert capsys.readouterr().out == ""  # a forced mode is not announced
    with pytest.raises(InputError, match="storage='disk'"):
        PairSampler(mov, patch=16, storage="disk")


def test_auto_announces_its_choice_only_when_it_matters(monkeypatch, capsys):
    """One line for the host, or for a movie over half the 1/3 limit; silence for a small movie or
    unknown memory."""
    mov = uint16_movie()
    need = host_store.store_bytes(mov[:, None])
    # a small movie: nothing to say
    monkeypatch.setattr(host_store, "free_bytes", lambda device: 100 * need)
    assert (
        PairSampler(mov, patch=16, batch_size=8).storage == "device"
        and capsys.readouterr().out == ""
    )
    # 3/5 of the limit: tight
    monkeypatch.setattr(host_store, "free_bytes", lambda device: 5 * need)
    assert PairSampler(mov, patch=16, batch_size=8).storage == "device"
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "on the device" in out and "no more than 1/3" in out
    # unknown (e.g. MPS): the device, silently
    monkeypatch.setattr(host_store, "free_bytes", lambda device: None)
    assert (
        PairSampler(mov, patch=16, batch_size=8).storage == "device"
        and capsys.readouterr().out == ""
    )


def test_frame_stats_match_normalize_and_subsample_large_frames(monkeypatch):
    mov = uint16_movie(6, (64, 64)).astype(np.float32)
    for per_frame in (True, False):
        lo, denom = movie_arrays.frame_stats(mov[:, None], per_frame)
        manual = (mov - lo[:, :, None]) / denom[:, :, None]
        assert np.array_equal(manual, normalize(mov, per_frame=per_frame))
    lo, denom = movie_arrays.frame_stats(mov[:, None], True)
    monkeypatch.setattr(movie_arrays, "MAX_STAT_PIXELS", 1000)  # every 5th pixel of a 64 x 64 frame
    lo_s, denom_s = movie_arrays.frame_stats(mov[:, None], True)
    assert not np.array_equal(lo_s, lo)  # a subsample was used ...
    # ... close
    assert np.allclose(lo_s, lo, atol=0.1 * denom.max()) and np.allclose(denom_s, denom, rtol=0.1)
    bad = mov.copy()
    bad[2, 3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        PairSampler(bad, patch=16, storage="host")


def test_bad_paths_are_named(tmp_path):
    with pytest.raises(InputError, match="not a TIFF"):
        PairSampler(str(tmp_path / "missing.tif"), patch=16, storage="host")


def test_training_is_the_same_in_both_modes():
    mov = uint16_movie(12, (48, 48))
    kw = dict(
        epochs=1,
        steps_per_epoch=3,
        batch_size=8,
        patch=24,
        val_steps=1,
        device="cpu",
        seed=0,
        model_kwargs=dict(n_depth=1, base_filters=4, head_features=8),
        progress=False,
    )
    _, dev = train_tap(mov, storage="device", **kw)
    _, host = train_tap(mov, storage="host", **kw)
    for key in ("train_loss", "val_loss"):
        assert np.allclose(dev[key], host[key], rtol=1e-5, atol=1e-6)


def test_frame_stats_read_one_frame_at_a_time():
    import tracemalloc

    mov = uint16_movie(40, (256, 256))  # 10.5 MB as float32
    tracemalloc.start()
    movie_arrays.frame_stats(mov[:, None])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3e6  # a few frames' worth (256 kB each as float32), not the movie
