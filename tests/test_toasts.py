"""Toasts: a flush's notifications, a burst folded into one that names what changed and links to the rest."""

from __future__ import annotations

from nvrmon.live.toasts import summarise
from nvrmon.models import Toast


def camera(name: str, status: str) -> Toast:
    """A toast as the hub makes it for a camera flip."""
    level = "success" if status == "online" else "error"
    return Toast(level, f"Camera {name} {status}", "nvr-1", device=name, kind="camera")


def test_summarise_keeps_few_toasts_as_they_are() -> None:
    few = [Toast("error", "a"), Toast("success", "b")]
    assert summarise(few) == few


def test_summarise_folds_a_burst_into_one_toast_with_counts() -> None:
    burst = [Toast("error", str(i)) for i in range(64)] + [Toast("success", "x")]
    assert summarise(burst) == [Toast("error", "65 changes", "64 went offline; 1 came online")]


def test_summarise_names_the_first_devices_of_a_burst_and_links_the_rest() -> None:
    burst = [camera(n, "offline") for n in ("cam-3", "cam-7", "cam-9")] + [camera("cam-1", "online")]
    burst += [Toast("warning", "nvr-1: critical", "intruder")]
    (toast,) = summarise(burst)
    assert toast.title == "5 changes" and toast.level == "error"
    assert toast.body == "3 went offline: cam-3, cam-7 and 1 more; 1 came online: cam-1; 1 alerts"
    assert toast.link == "/cameras?status=offline"  # the filtered list shows the one not named


def test_summarise_links_nvrs_when_nvrs_went_down() -> None:
    nvrs = [Toast("error", f"nvr-{i} offline", "agent disconnected", f"nvr-{i}", "nvr") for i in range(5)]
    (toast,) = summarise(nvrs)
    assert toast.body == "5 went offline: nvr-0, nvr-1 and 3 more" and toast.link == "/nvrs?status=offline"


def test_summarise_groups_degraded_and_recovered_devices_apart_from_flips() -> None:
    burst = [Toast("warning", f"Camera c{i} degraded", "not recording", f"c{i}", "camera", change="degraded")
             for i in range(4)]  # fmt: skip
    burst += [Toast("success", "Camera c9 healthy again", "no longer degraded", "c9", "camera", change="recovered")]
    (toast,) = summarise(burst)
    assert toast.level == "warning" and toast.title == "5 changes"
    assert toast.body == "4 degraded: c0, c1 and 2 more; 1 no longer degraded: c9"
    assert toast.link == "/cameras?status=degraded"
