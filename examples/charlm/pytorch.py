"""The char model of examples/charlm/run.sh in PyTorch, trained for the same wall time:
word_language_model's batchify and get_batch, repackage_hidden, Adam, clip_grad_norm_, the
last 5 % of the bytes for validation (evaluated with the state carried). Prints the steps
taken and the validation bits per byte.
    python3 pytorch.py CORPUS SECONDS THREADS"""
import math
import sys
import time

import torch
from torch import nn

corpus, seconds, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(1)
data = open(corpus, "rb").read()
held = round(len(data) * 0.05)
streams, k = 32, 64


def batchify(b):
    n = len(b) // streams
    t = torch.tensor(list(b[: n * streams]), dtype=torch.long)
    return t.view(streams, n).t().contiguous()  # [N, B], stream j = bytes j*n..(j+1)*n


train, val = batchify(data[: len(data) - held]), batchify(data[len(data) - held :])


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(256, 64)
        self.lstm = nn.LSTM(64, 256, num_layers=2)
        self.head = nn.Linear(256, 256)

    def forward(self, x, state=None):
        y, state = self.lstm(self.embedding(x), state)
        return self.head(y), state


model = Model()
opt = torch.optim.Adam(model.parameters(), lr=0.002)
warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / 20, total_iters=20)
loss_fn = nn.CrossEntropyLoss()


def windows(n):
    return [(i, min(k, n - 1 - i)) for i in range(0, n - 1, k)]


steps, state, start = 0, None, time.perf_counter()
while time.perf_counter() - start < seconds:
    for i, ln in windows(train.shape[0]):
        if time.perf_counter() - start >= seconds:
            break
        x, y = train[i : i + ln], train[i + 1 : i + 1 + ln]
        state = None if i == 0 else tuple(s.detach() for s in state)
        logits, state = model(x, state)
        loss = loss_fn(logits.reshape(-1, 256), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        warmup.step()
        steps += 1
elapsed = time.perf_counter() - start
model.eval()
total, count, state = 0.0, 0, None
with torch.no_grad():
    for i, ln in windows(val.shape[0]):
        logits, state = model(val[i : i + ln], state)
        total += loss_fn(logits.reshape(-1, 256), val[i + 1 : i + 1 + ln].reshape(-1)).item() * ln
        count += ln
loss = total / count
print(f"trained {steps} steps in {elapsed:.1f} s ({steps / elapsed:.2f} steps/s): "
      f"validation loss {loss:.4f}, bits per byte {loss / math.log(2):.4f}")
