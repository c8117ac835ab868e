"""Priority grades A-D for open opportunities, with reasons, history and calibration."""
