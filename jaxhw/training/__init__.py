"""TrainState, jitted train/eval steps and epochs, and the fit loop."""
from jaxhw.training.state import TrainState, create_train_state
from jaxhw.training.steps import Objective, classification, make_epoch_fn, make_eval_fn, train_step, eval_step
from jaxhw.training.fit import fit

__all__ = ["TrainState", "create_train_state", "Objective", "classification", "make_epoch_fn",
           "make_eval_fn", "train_step", "eval_step", "fit"]
