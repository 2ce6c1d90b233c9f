"""A sheet's readings trusted together when its declared total agrees: the probability, and what it does on real
handwriting none of the models saw."""

from __future__ import annotations

import pytest

from formsvc.extract.digits import ACCEPT_RIGHT, read_score
from formsvc.extract.joint import Reading, p_right, sheet_sure
from formsvc.extract.parse import ScoreBox, apply_total, doubt_unchecked
from formsvc.extract.read import FieldRead

THRESHOLD = 0.8


def _r(value: float, confidence: float, *cands: tuple[float, float], max_points: float = 10.0) -> Reading:
    return Reading(value, confidence, cands or ((value, 1.0),), max_points, 0.5)


def test_probability_right_inverts_the_calibrations_map() -> None:
    assert p_right(THRESHOLD, THRESHOLD) == pytest.approx(ACCEPT_RIGHT)
    assert p_right(0.4, THRESHOLD) == pytest.approx(ACCEPT_RIGHT / 2)
    assert p_right(0.9, THRESHOLD) == pytest.approx((ACCEPT_RIGHT + 1) / 2)
    assert p_right(1.0, THRESHOLD) < 1.0  # nothing read from paper is certain


def test_readings_that_do_not_add_up_are_not_measured() -> None:
    assert sheet_sure([_r(8.0, 0.95), _r(7.5, 0.95)], _r(16.0, 0.95, max_points=100), THRESHOLD) == 0.0


def test_several_fairly_sure_boxes_whose_misreads_could_not_cancel_are_sure_together() -> None:
    # Four boxes each right ~98 % of the time alone; their only alternatives move the sum the same way.
    boxes = [_r(6.0, 0.79, (6.0, 0.9), (8.0, 0.1)), _r(4.0, 0.79, (4.0, 0.9), (9.0, 0.1)),
             _r(9.5, 0.79, (9.5, 0.9), (10.0, 0.1)), _r(7.0, 0.79, (7.0, 0.9), (9.0, 0.1)), _r(8.0, 0.95)]
    sure = sheet_sure(boxes, _r(34.5, 0.95, max_points=100), THRESHOLD)
    assert sure >= ACCEPT_RIGHT
    # Each alone is below what the review threshold trusts.
    assert all(p_right(b.confidence, THRESHOLD) < ACCEPT_RIGHT for b in boxes[:4])


def test_two_unsure_boxes_that_could_be_swapped_are_not_sure() -> None:
    # 7,5 + 4 or 4,5 + 7: the sum cannot tell.
    boxes = [_r(8.0, 0.95), _r(7.5, 0.5, (7.5, 0.5), (4.5, 0.4)), _r(4.0, 0.5, (4.0, 0.5), (7.0, 0.4))]
    assert sheet_sure(boxes, _r(19.5, 0.95, max_points=100), THRESHOLD) < 0.9


def test_a_box_and_the_total_misread_by_the_same_amount_is_a_doubt() -> None:
    # 4,5 / 63,5 or 4 / 63: both unsure, both offering the other reading.
    boxes = [_r(4.5, 0.6, (4.5, 0.8), (4.0, 0.2)), *[_r(6.5, 0.95) for _ in range(9)]]
    total = _r(63.0, 0.6, (63.0, 0.8), (62.5, 0.2), max_points=100)
    assert sheet_sure(boxes, total, THRESHOLD) < ACCEPT_RIGHT
    boxes[0] = _r(4.5, 0.6)  # no reading offers 4 any more: only the even spread of unseen values remains
    assert sheet_sure(boxes, total, THRESHOLD) > sheet_sure([_r(4.5, 0.6, (4.5, 0.8), (4.0, 0.2)), *boxes[1:]],
                                                            total, THRESHOLD)


def test_less_sure_readings_make_a_less_sure_sheet() -> None:
    total = _r(20.0, 0.95, max_points=100)
    values = [(6.0, (8.0, 0.1)), (7.0, (9.0, 0.1)), (7.0, (1.0, 0.1))]
    sure = [sheet_sure([_r(v, c, (v, 0.9), alt) for v, alt in values], total, THRESHOLD) for c in (0.79, 0.6, 0.4)]
    assert sure[0] > sure[1] > sure[2]


@pytest.mark.slow
def test_on_real_held_out_handwriting_sheets_trusted_together_are_right() -> None:
    """Sheets of ten boxes written with MNIST digits at the held-out positions (never trained or calibrated on),
    read by the recogniser, with the writer's total known: a sheet whose fields all end up trusted holds no
    misread, and trusting readings together accepts sheets that box-by-box trust would not."""
    from formsvc.extract.digits_train import HELD_OUT, written_boxes

    boxes = written_boxes(HELD_OUT, 800, seed=77, augment=True)
    silent = accepted = accepted_alone = 0
    for start in range(0, len(boxes), 10):
        sheet = boxes[start:start + 10]
        read = []
        for n, (_, img) in enumerate(sheet):
            r = read_score(img, max_value=10, step=0.5)
            value = r.value if isinstance(r.value, float) else None
            cands = ((value, 1.0),) if value is not None and r.confidence >= THRESHOLD else r.candidates
            read.append(ScoreBox(f"scores.ct{n}", value, r.confidence, cands or ((0.0, 1e-4),)))
        reads = {b.name: FieldRead(b.name, "score", str(b.value), False, b.confidence, (0, 0, 1, 1), "handwriting")
                 for b in read}
        truth = sum(v for v, _ in sheet)
        total = ScoreBox("total_declared", truth, 0.95, ((truth, 1.0),), 100.0, 0.5)
        out, t = apply_total(read, total, THRESHOLD)
        out = doubt_unchecked(out, t.value, reads)  # as build_record: a sum nothing agrees with trusts no box
        trusted = all(b.confidence >= THRESHOLD for b in [*out, t])
        accepted += trusted
        accepted_alone += all(b.confidence >= THRESHOLD for b in read)
        silent += sum(b.confidence >= THRESHOLD and b.value != v for b, (v, _) in zip(out, sheet, strict=True))
    assert silent == 0
    assert accepted > accepted_alone
