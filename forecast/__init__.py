"""The revenue forecast, its backtest and the targets: after the grades, from the calibrated
win probabilities and past cycle times."""
