"""Grad-CAM on the model's last convolution (Huang et al., Sec. IV-B, Eqs. 2-3).

Own implementation (forward hook + ``torch.autograd.grad``; Captum's ``LayerGradCam`` is
only used by the tests as a parity check when it is installed).

For a batch ``z`` (the model's transformed input) and target classes j:

1. forward through the network, keeping the feature maps ``F`` (N, K, ...) of the layer
   ``layer`` names:

   - ``activation`` (default): the output of ``model.cam_layer`` when the model declares
     one: the rectified maps after its last convolution's activation. Grad-CAM weighs
     the activations a convolutional layer passes on (its reference code hooks VGG's
     relu5_3), and the paper's F are the second convolution's feature maps, which LeNet
     passes on through a ReLU. LeNet declares that ReLU; on a trained LeNet the maps
     before it rank-correlate only 0.70 with the ones after it (docs/explain.md). A
     model without ``cam_layer`` falls back to ``last_conv`` (for the paper's ResNet the
     third residual stack, whose output no ReLU follows);
   - ``conv``: the output of ``last_conv`` itself, before any activation (version 1's
     maps: ``layer: conv`` reproduces them);
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

Version 2: the default layer became ``activation`` (version 1 hooked ``last_conv``, the
pre-ReLU maps on LeNet), so version 1's records are not reused.
"""
from __future__ import annotations

import torch

from amrbench.api import Explainer
from amrbench.hookspecs import hookimpl
from amrbench_plugins.explain.attribution import NotApplicable, no_cudnn, normalise, resize

LAYERS = ("activation", "conv")


def feature_layer(model, layer: str = "activation"):
    """The module whose output Grad-CAM weighs: ``model.cam_layer`` (the rectified maps
    after the last convolution) for ``activation`` when the model declares it, else
    ``model.last_conv``."""
    conv = getattr(model, "last_conv", None)
    if conv is None:
        raise NotApplicable(f"Grad-CAM needs a convolution: {type(model).__name__} has no last_conv "
                            "(use the mask explainer for recurrent models)")
    rectified = getattr(model, "cam_layer", None)
    return rectified if layer == "activation" and rectified is not None else conv


def features_and_gradients(model, z: torch.Tensor, target: torch.Tensor, layer: str = "activation") -> tuple:
    """The maps F (N, K, ..., V) of ``feature_layer(model, layer)`` and the gradient of
    the target logits with respect to them, from one forward and one backward pass."""
    module = feature_layer(model, layer)
    captured = {}

    def hook(module, inputs, output):
        captured["features"] = output

    handle = module.register_forward_hook(hook)
    try:
        with torch.enable_grad(), no_cudnn():
            inputs = z.detach().requires_grad_(True)
            logits = model(inputs)
            features = captured.get("features")
            if not isinstance(features, torch.Tensor) or features.dim() < 3:
                raise NotApplicable(f"Grad-CAM: the {layer} layer of {type(model).__name__} must output "
                                    "(N, K, ..., V) maps")
            score = logits.float().gather(1, target.to(logits.device)[:, None]).sum()
            (grads,) = torch.autograd.grad(score, features)
    finally:
        handle.remove()
    return features.detach().float(), grads.float()


def grad_cam_map(model, z: torch.Tensor, target: torch.Tensor, layer: str = "activation") -> torch.Tensor:
    """ReLU(sum_k alpha_k F_k) reduced to the time axis (N, V), before resizing."""
    features, grads = features_and_gradients(model, z, target, layer)
    spatial = tuple(range(2, features.dim()))
    alpha = grads.mean(dim=spatial, keepdim=True)                 # Eq. 2
    cam = torch.relu((alpha * features).sum(dim=1))                # Eq. 3: (N, ..., V)
    if cam.dim() > 2:                                              # 2-D maps: average the rows
        cam = cam.mean(dim=tuple(range(1, cam.dim() - 1)))
    return cam


class GradCAM(Explainer):
    """Grad-CAM (Selvaraju et al. 2017) on the last convolution, as in Huang et al. (Eqs. 2-3)."""

    name = "gradcam"
    version = "2"  # 2: default layer "activation" (1: last_conv's pre-activation maps)
    defaults = {"layer": "activation"}
    choices = {"layer": LAYERS}

    def explain(self, model, x, target):
        cam = grad_cam_map(model, x, target, self.params["layer"])
        return normalise(resize(cam, x.shape[-1]))


@hookimpl
def amrbench_register(registry):
    registry.add(GradCAM)
