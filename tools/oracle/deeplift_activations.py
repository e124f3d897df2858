"""Captum's DeepLift on a small MLP with every activation it rescales (Sigmoid, Tanh, LeakyReLU)
and a Softmax head: prints the weights, inputs, baselines and Captum's attributions and deltas as
C++ initializers for tests/attr/test_deep_lift_activations.cpp.

Run with Debian's python3-torch (1.13) and Captum's source (0.8.0, pure Python; needs
python3-tqdm and python3-matplotlib for its imports):
    PYTHONPATH=/path/to/captum /usr/bin/python3 tools/oracle/deeplift_activations.py
"""
import torch
import torch.nn as nn
from captum.attr import DeepLift

torch.manual_seed(7)


class Mlp(nn.Module):
    def __init__(self, softmax_head):
        super().__init__()
        self.fc1, self.sigmoid = nn.Linear(6, 8), nn.Sigmoid()
        self.fc2, self.tanh = nn.Linear(8, 8), nn.Tanh()
        self.fc3, self.leaky = nn.Linear(8, 8), nn.LeakyReLU(0.1)
        self.fc4 = nn.Linear(8, 5)
        self.head = nn.Softmax(dim=1) if softmax_head else nn.Identity()

    def forward(self, x):
        x = self.tanh(self.fc2(self.sigmoid(self.fc1(x))))
        return self.head(self.fc4(self.leaky(self.fc3(x))))


def floats(t):
    return "{" + ", ".join(f"{v:.9g}f" for v in t.detach().reshape(-1).tolist()) + "}"


logits_model = Mlp(False)
for p in logits_model.parameters():  # wider than the default init: the activations bend
    nn.init.uniform_(p, -1.5, 1.5)
softmax_model = Mlp(True)
softmax_model.load_state_dict(logits_model.state_dict())
x = torch.randn(3, 6)
baselines = torch.randn(3, 6) * 0.5
target = [0, 2, 4]

print("// Weights: fc1..fc4 weight and bias (PyTorch's [out, in] layout)")
for name, p in logits_model.state_dict().items():
    print(f"const std::vector<float> k_{name.replace('.', '_')} = {floats(p)};")
print(f"const std::vector<float> kInputs = {floats(x)};")
print(f"const std::vector<float> kBaselines = {floats(baselines)};")
for label, model in (("Logits", logits_model), ("Softmax", softmax_model)):
    attr, delta = DeepLift(model).attribute(
        x, baselines=baselines, target=target, return_convergence_delta=True
    )
    print(f"const std::vector<float> k{label}Attributions = {floats(attr)};")
    print(f"const std::vector<float> k{label}Delta = {floats(delta)};")
