"""Grad-CAM on the model's last convolution (Huang et al., Sec. IV-B, Eqs. 2-3).

Own implementation (forward hook + ``torch.autograd.grad``; Captum's ``LayerGradCam`` is
only used by the tests as a parity check when it is installed).

For a batch ``z`` (the model's transformed input) and target classes j:

1. forward through the network, keeping the output ``F`` (N, K, ...) of ``last_conv``
   (the module the model plugin names; for the paper's LeNet the 80-map convolution, for
   its ResNet the third residual stack);
2. the **pre-softmax** score y_j (the logit) is differentiated with respect to ``F``;
   alpha_k = the mean of dy_j / dF_k over every spatial position (Eq. 2, 1/(UV) sum);
3. w = ReLU(sum_k alpha_k F_k) (Eq. 3);
4. 2-D feature maps (N, K, H, W) of the ``iq_2d`` models: the last axis W is time; the
   height H (the I/Q rows, 1 for the paper's LeNet, 2-3 for VGG-style nets) is
   **averaged after the ReLU**, so a time step counts by its mean positive evidence over
   the rows (for any other layout the same rule holds: every axis but the last is
   averaged);
5. the map (V = W values) is resized to the input length L by linear interpolation with
   half-pixel centres (the paper's OpenCV bilinear resize of a 1 x V vector);
6. normalised per signal to [0, 1] (min-max; a map without positive evidence is all 0).

Signals are independent (eval mode), so the whole batch takes one forward and one
backward pass. A network without a convolution (``last_conv`` None, e.g. the LSTM)
raises ``NotApplicable``: the ``explain`` protocol records such a cell as not applicable.
"""
from __future__ import annotations

import torch

from amrbench.api import Explainer
from amrbench.explain import NotApplicable, no_cudnn, normalise, resize
from amrbench.hookspecs import hookimpl


def grad_cam_map(model, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ReLU(sum_k alpha_k F_k) reduced to the time axis (N, V), before resizing."""
    layer = getattr(model, "last_conv", None)
    if layer is None:
        raise NotApplicable(f"Grad-CAM needs a convolution: {type(model).__name__} has no last_conv "
                            "(use the mask explainer for recurrent models)")
    captured = {}

    def hook(module, inputs, output):
        captured["features"] = output

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad(), no_cudnn():
            inputs = z.detach().requires_grad_(True)
            logits = model(inputs)
            features = captured.get("features")
            if not isinstance(features, torch.Tensor) or features.dim() < 3:
                raise NotApplicable(f"Grad-CAM: last_conv of {type(model).__name__} must output (N, K, ..., V) maps")
            score = logits.float().gather(1, target.to(logits.device)[:, None]).sum()
            (grads,) = torch.autograd.grad(score, features)
    finally:
        handle.remove()
    features, grads = features.detach().float(), grads.float()
    spatial = tuple(range(2, features.dim()))
    alpha = grads.mean(dim=spatial, keepdim=True)                 # Eq. 2
    cam = torch.relu((alpha * features).sum(dim=1))                # Eq. 3: (N, ..., V)
    if cam.dim() > 2:                                              # 2-D maps: average the rows
        cam = cam.mean(dim=tuple(range(1, cam.dim() - 1)))
    return cam


class GradCAM(Explainer):
    """Grad-CAM (Selvaraju et al. 2017) on the last convolution, as in Huang et al. (Eqs. 2-3)."""

    name = "gradcam"
    version = "1"
    defaults = {}

    def explain(self, model, x, target):
        cam = grad_cam_map(model, x, target)
        return normalise(resize(cam, x.shape[-1]))


@hookimpl
def amrbench_register(registry):
    registry.add(GradCAM)
