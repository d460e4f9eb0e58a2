"""Autocalibration against the simulator's truth: a simulated day of free living with a known device error."""

import numpy as np
import pytest

from capture_pipeline.calibration_fit import fit_calibration


@pytest.mark.slow
def test_recovers_simulated_device_calibration():
    participant = pytest.importorskip("capture_pipeline.simulate.participant")
    rec, truth = participant.simulate_participant("P001", hours=24, seed=0, per_sample_annotation=False)
    coef = fit_calibration(rec)
    info = coef.info
    assert info["applied"] and info["good_calibration"], info["reason"]
    assert info["n_stationary_points"] > 500  # sitting, standing and sleep in many postures
    # the truth expressed at the fit's mean temperature (the model's offsets depend on that reference point)
    expected = truth.calibration_at(coef.mean_temp)
    assert np.max(np.abs(np.subtract(coef.offset, expected.offset))) < 0.005  # 5 mg (issue 5)
    assert np.max(np.abs(np.divide(coef.gain, expected.gain) - 1)) < 0.005  # 0.5 % (issue 5)
    assert info["error_before_mg"] > 5.0 and info["error_after_mg"] < 5.0
