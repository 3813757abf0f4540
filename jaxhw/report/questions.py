"""The homework's questions, the student's answers as written in the homework (typos kept), and the grade of
each answer: a decision, stated with its reason and what was missing, pinned by tests/test_report.py."""

QUESTIONS = {
    "1A": "Your softmax classifier outputs the vector ŷ = [0.1, 0.1, 0.0, 0.4, 0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.1] "
          "for an image of the digit '3'. Compute the cross-entropy loss. (Correct label: `y = torch.tensor([3])` "
          "or y = (0.0, 0.1, 0.0, 0.0, 0.0).)",
    "1B": "Why is the cross-entropy loss used for MNIST classification? Why is MSE a poor substitute? Assume ŷ_3 = 0.9 "
          "(for the correct label y_3 = 1) and compute ∂MSE/∂ŷ_k vs. ∂CE/∂ŷ_k. Which loss gives the larger gradient "
          "signal when the network is already confident, and why is that good?",
    "1C": "Why is there no `nn.Softmax()` layer between the final linear layer and `CrossEntropyLoss()`? Shouldn't "
          "classification produce probabilities adding up to 1?",
    "2A": "Fill in the blanks (a) through (g) of the autoencoder training loop "
          "(`optimizer = optim.Adam(model.parameters(), lr=0.001)`, `loss_fn = nn.MSELoss()`, 10 epochs over "
          "`train_loader`).",
    "2B": "What is this model learning and why does the loss function (you chose) make sense?",
    "3A": "Which sub-package hosts MNIST? Fill in: from ___ import ___",
    "3B": "Where does Adam live? from ___ import ___",
    "3C": "Which class is responsible for shuffling and batching data during training? "
          "from torch.utils.data import ___",
    "3D": "What happens if `loss.backward()` is missing?",
    "3E": "(The question's text is missing in the homework; from the answer:) what does `optimizer.zero_grad()` do, "
          "and what happens without it?",
    "3F": "What happens to Dropout and batch normalization during `model.train()` vs `model.eval()`?",
    "3G": "During training, your model achieves low loss and high accuracy, but on the test set performance is much "
          "worse. One possible cause is forgetting to switch the model to evaluation mode. What line of code should "
          "you add before running inference on the test set?",
    "4": "Problem 4 is a Colab notebook that cannot be opened here; read as: train and evaluate the homework's "
         "models end to end, with learning curves and figures.",
    "5A": "Each sample is 50 time points x 8 features, the label is 0 or 1. Why might a Multilayer Perceptron (MLP) be "
          "a poor choice for modeling this dataset?",
    "5B": "When would a CNN be most effective at modeling this dataset? When would it be the least effective?",
    "5C": "Name two other model families that would be a good choice for this dataset. For each, explain what about "
          "the model makes it useful for this type of analysis.",
}

STUDENT = {
    "1A": "(no answer written)",
    "1B": "Cross entropy loss penalizes confident wrong predictions more heavily. Using the example given, I see that "
          "cross entropy shows LARGER gradient signal. That is good because it allows for better learning of the "
          "classification.",
    "1C": "the CrossEntropyLoss() function in Pytorch has the Softmax functionality already embedded in it.",
    "2A": "(no answer written: the homework shows the loop with its blanks, not the student's filling of them)",
    "2B": "I use an MSE loss function because it is not a classification task but is instead reconstruction task. "
          "[...] MSE is best as it average the distance between predicted vs actual pixels. This model is learning "
          "compressed representation of the numbers in MNIST dataset. It can map the original image 28 x 28 pixel on "
          "to just a few number (i.e 2 number)",
    "3A": "from torchvisions import datasets",
    "3B": "from torch.optim import Adam",
    "3C": "from torch.utils.data import DataLoader",
    "3D": "This function computes the loss gradient every input parameter. Without this the model fail to learn as the "
          "parameters will have no update during optimzer. Step()",
    "3E": "optimzer.zero_grad() clears the computed gradient for every parameter in the parameter. This prevents "
          "accumulation of gradients from previous passes and ensures that model trains on relevant/fresh gradients.",
    "3F": "Batch Normalization uses the learned running statistics in model.eval, whereas, it used batch-specific "
          "stats in model.train. Dropout is enabled is mode.train but is automatically disabled in mode.eval()",
    "3G": "mode.eval() should be called before running the model on the test set",
    "4": "(no answer in the homework's text: problem 4 is a notebook it links to)",
    "5A": "(no answer written under 5A)",
    "5B": "A CNN would be most effective when trying to detect features from an image such as a person smiling or "
          "frowning etc. Also, positional invariant problems can be solved using a CNN, such as detecting a dog in a "
          "picture no matter where it appears. It would be least effective if the images contain a pattern that "
          "changes with time over the 50 images. Such as temperature rising shown over the 50 images. CNNs struggle "
          "with capturing long-range dependencies across the entire input",
    "5C": "LSTM is well-suited for as task like this. It excels in time series analysis because it can learn and "
          "predict sequential patterns. [...] GRU could also be used, as they are another type of RNNs just like LTSM. "
          "[...] It is not as superior in performance as LTSM but it does not have vanishing gradient problem like "
          "conventional neural networks.",
}

# A paragraph the homework places after problem 5, under no question; it reads like an answer to 5A.
UNPLACED_5A = ("An MLP lacks the ability to extract spatial information from an image. A dog appearing at the bottom "
               "of the image vs the same dog appearing at the top of the image will be learned differently by the MLP. "
               "Also, in an MLP a pixel corresponds to 1 perceptron, which leads to an unmanageable amount of "
               "parameters for large images.")

GRADE_NAMES = ("correct", "partly correct", "wrong", "not answered")

# question: (grade, the reason in one sentence, what was missing)
GRADES = {
    "1A": ("not answered", "The homework shows no answer to 1A.",
           "CE = -ln 0.4 = 0.916 nats, and that the printed vector and label are malformed."),
    "1B": ("partly correct", "The conclusion is right (cross-entropy gives the larger gradient when the network is "
           "confident), but the question asked to compute the gradients and to say why that is good, and 'better "
           "learning' does not say why.",
           "The numbers, and the reason: cross-entropy's logit gradient fades only as fast as the error does and "
           "stays large when the network is confidently wrong, where MSE's vanishes."),
    "1C": ("correct", "CrossEntropyLoss is LogSoftmax followed by NLLLoss, which is what 'has the softmax embedded' "
           "says.",
           "The second question: the probabilities are a softmax of the logits away when needed; and what an extra "
           "softmax would do (the loss confined to [1.461, 2.461], its gradient vanishing at both ends)."),
    "2A": ("not answered", "The homework shows no filling of the blanks.",
           "(a) optimizer.zero_grad(), (b) model.train(), (c) x = images.view(images.size(0), -1), "
           "(d) loss_fn(x_hat, x), (e) loss.backward(), (f) optimizer.step()."),
    "2B": ("correct", "Reconstruction of the input from a small code, with a pixel-wise loss, is what the model learns "
           "and why MSE fits.",
           "MSE is not the only fit (per-pixel binary cross-entropy suits pixels in [0, 1] too)."),
    "3A": ("correct", "torchvision's datasets hosts MNIST; 'torchvisions' is a one-letter slip (the import would "
           "fail as written), not a misunderstanding.", "The package name spelt torchvision."),
    "3B": ("correct", "Adam lives in torch.optim, as written.", "Nothing."),
    "3C": ("correct", "DataLoader shuffles and batches, as written.", "Nothing."),
    "3D": ("correct", "Without backward() no gradient is computed, .grad stays None and step() changes nothing: the "
           "model does not learn, as written.",
           "Only the caveat that gradients zeroed to tensors (zero_grad(set_to_none=False)) let Adam's momentum "
           "keep moving the parameters."),
    "3E": ("correct", "zero_grad() clears the accumulated gradients so each step uses only the fresh ones, as "
           "written.", "Nothing."),
    "3F": ("correct", "Dropout is on in train mode and off in eval; BatchNorm uses batch statistics in train mode "
           "and the running statistics in eval, as written.",
           "That the running statistics are moving averages, not learned by gradient descent, and that dropout "
           "rescales the kept activations by 1/(1-p)."),
    "3G": ("correct", "model.eval() is the line; 'mode.eval()' is the same kind of one-letter slip as "
           "'torchvisions' in 3A.", "The spelling model.eval()."),
    "4": ("not answered", "Problem 4 is a notebook the homework links to; its text holds no answer.",
          "The trained and evaluated models of problems 1, 2 and 5."),
    "5A": ("not answered", "The homework shows no answer under 5A (a paragraph after 5C reads like one and is "
           "discussed below, not graded).",
           "That an MLP ties every weight to one time step and feature, so a pattern learned at one time is not "
           "recognised at another, and that the data are time series, not images."),
    "5B": ("partly correct", "Positional invariance is the right 'most effective' case, but the answer is about "
           "images, its 'rising temperature' example is one a CNN handles, and only a CNN whose receptive field "
           "is shorter than the dependency struggles with it.",
           "That a 1-D CNN slides over time with the 8 features as channels, and that its receptive field, not "
           "convolution itself, limits long-range dependencies."),
    "5C": ("partly correct", "LSTM and GRU are sound choices for sequences, but they are one family (gated "
           "recurrent networks), the GRU-is-weaker aside is not what the measurements show, and gating mitigates "
           "the vanishing gradient rather than removing it.",
           "A second family: attention-based Transformers or temporal convolutional networks (dilated 1-D CNNs)."),
}
