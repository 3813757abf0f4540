"""TrainState, jitted train/eval steps and epochs, and the fit loop."""
from jaxhw.training.fit import fit
from jaxhw.training.state import TrainState, create_train_state, parameter_count
from jaxhw.training.steps import (
           Objective,
           classification,
           eval_step,
           make_epoch_fn,
           make_eval_fn,
           train_step,
)

__all__ = ["TrainState", "create_train_state", "parameter_count", "Objective", "classification", "make_epoch_fn",
           "make_eval_fn", "train_step", "eval_step", "fit"]
