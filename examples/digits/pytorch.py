"""The digits model trained by PyTorch, for comparison with `lstm-wgpu train` in the same
run (examples/digits/run.sh): the same initial weights (init.safetensors, written by
`lstm-wgpu init`), the same loss (cross-entropy on the head applied to the final hidden
state), optimizer, learning rate, batch size and epochs. Prints test accuracy and seconds per
epoch as one JSON line.

    python3 examples/digits/pytorch.py DATA_DIR EPOCHS BATCH LR [cpu|cuda]
Requires: torch, numpy, safetensors."""
import json
import os
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file


class Model(torch.nn.Module):
    def __init__(self, state):
        super().__init__()
        hidden = state["lstm.weight_hh_l0"].shape[1]
        inputs = state["lstm.weight_ih_l0"].shape[1]
        classes = state["head.weight"].shape[0]
        self.lstm = torch.nn.LSTM(inputs, hidden)
        self.head = torch.nn.Linear(hidden, classes)
        self.load_state_dict(state)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.head(h_n[-1])


def main():
    data, epochs, batch, lr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    device = sys.argv[5] if len(sys.argv) > 5 else "cpu"
    torch.manual_seed(0)
    load = lambda name: torch.from_numpy(np.load(os.path.join(data, name)))
    x_train, y_train = load("x_train.npy").to(device), load("y_train.npy").to(device)
    x_test, y_test = load("x_test.npy").to(device), load("y_test.npy").to(device)
    model = Model(load_file(os.path.join(data, "init.safetensors"))).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = x_train.shape[1]
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n, device=device)
        for k in range(0, n, batch):
            index = order[k:k + batch]
            opt.zero_grad()
            loss = loss_fn(model(x_train[:, index]), y_train[index])
            loss.backward()
            opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(json.dumps(dict(framework=f"PyTorch {torch.__version__} ({device}, {torch.get_num_threads()} threads)",
                          test_accuracy=accuracy, seconds_per_epoch=seconds / epochs, final_loss=loss.item())))


if __name__ == "__main__":
    main()
