"""Householder Sylvester flows with parameters from the encoder (amortized).

One Sylvester map, for z in R^D, is

    z' = z + Q R tanh(S Q^T z + b),

with Q orthogonal, R and S upper triangular. By Sylvester's determinant identity
det(I + Q R diag(h') S Q^T) = det(I + diag(h') S R), and S R is upper triangular, so

    log |det dz'/dz| = sum_i log(1 + h'_i r_ii s_ii),   h' = 1 - tanh^2(S Q^T z + b).

r_ii = tanh(.) and s_ii = tanh(.) keep r_ii s_ii > -1 >= -1 / max h', which makes the map
invertible. Q is a product of H Householder reflections I - 2 v v^T / |v|^2, applied to vectors
without forming Q. The encoder outputs, per map and data point, one D x D matrix (its strict
upper triangle is R's, the transpose of its strict lower triangle is S's), the two diagonals,
b and the H reflection vectors. The inverse has no closed form: samples are scored from the
cache of their forward pass, and any other z' by back substitution. With v = Q^T z,
Q^T z' = v + R tanh(S v + b) is upper triangular in v: row i, from the last, is the increasing
scalar equation v_i + r_ii tanh(s_ii v_i + beta_i) = gamma_i once v_{i+1..D} are known.

The maps act on the standardized noise eps ~ N(0, I), and z = mu(x) + sigma(x) * (maps)(eps)
comes last: a posterior whose shape does not change with x then needs no x-dependent flow
parameters (applied after the affine map, b would have to follow -S Q^T mu(x)), which trains
much faster.

Pyro has a Sylvester transform with global parameters only, so this module writes the
amortized one.

References: van den Berg, Hasenclever, Tomczak & Welling (2018), Sylvester Normalizing Flows
for Variational Inference.
"""

from __future__ import annotations

import torch
from torch.distributions import constraints
from torch.distributions.transforms import Transform

from .flow import FlowGuide, affine, check_positive, solve_increasing


class ConditionedSylvester(Transform):
    """One Householder Sylvester map with per-data-point parameters.

    Args:
        r, s: ``[N, D, D]`` upper triangular, diagonals in (-1, 1).
        b: ``[N, D]``.
        v: ``[N, H, D]`` Householder vectors of unit length.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, r: torch.Tensor, s: torch.Tensor, b: torch.Tensor, v: torch.Tensor):
        super().__init__(cache_size=1)
        self.r, self.s, self.b, self.v = r, s, b, v

    def _reflect(self, z: torch.Tensor, transpose: bool) -> torch.Tensor:
        """Q^T z (``transpose``) or Q z, Q = H_1 H_2 ... H_H."""
        order = range(self.v.shape[-2]) if transpose else reversed(range(self.v.shape[-2]))
        for i in order:
            v = self.v[..., i, :]
            z = z - 2 * v * (z * v).sum(-1, keepdim=True)
        return z

    def _preactivation(self, z: torch.Tensor) -> torch.Tensor:
        u = self._reflect(z, transpose=True)
        return (self.s @ u.unsqueeze(-1)).squeeze(-1) + self.b

    def _call(self, z: torch.Tensor) -> torch.Tensor:
        act = torch.tanh(self._preactivation(z))
        return z + self._reflect((self.r @ act.unsqueeze(-1)).squeeze(-1), transpose=False)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Back substitution, row by row, then one Newton step with gradients from the root:
        v - J^-1 F(v), J = I + R diag(h') S upper triangular, gives the implicit gradient."""
        target = self._reflect(y, transpose=True)
        r_diag = self.r.diagonal(dim1=-2, dim2=-1)
        s_diag = self.s.diagonal(dim1=-2, dim2=-1)
        with torch.no_grad():
            v = torch.zeros_like(target)
            act = torch.zeros_like(target)
            for i in reversed(range(target.shape[-1])):
                later = slice(i + 1, None)
                beta = self.b[..., i] + (self.s[..., i, later] * v[..., later]).sum(-1)
                gamma = target[..., i] - (self.r[..., i, later] * act[..., later]).sum(-1)
                v[..., i] = solve_increasing(r_diag[..., i], s_diag[..., i], beta, gamma)
                act[..., i] = torch.tanh(s_diag[..., i] * v[..., i] + beta)
        pre = (self.s @ v.unsqueeze(-1)).squeeze(-1) + self.b
        act = torch.tanh(pre)
        residual = v + (self.r @ act.unsqueeze(-1)).squeeze(-1) - target
        jac = torch.eye(v.shape[-1], dtype=v.dtype, device=v.device) + self.r @ (
            (1 - act.square()).unsqueeze(-1) * self.s
        )
        step = torch.linalg.solve_triangular(jac, residual.unsqueeze(-1), upper=True)
        return self._reflect(v - step.squeeze(-1), transpose=False)

    def log_abs_det_jacobian(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Computes sum_i log(1 + h'_i r_ii s_ii), ``[..., N]``."""
        slope = 1 - torch.tanh(self._preactivation(z)).square()
        rs = self.r.diagonal(dim1=-2, dim2=-1) * self.s.diagonal(dim1=-2, dim2=-1)
        return torch.log1p(slope * rs).sum(-1)


class Sylvester(FlowGuide):
    """Sylvester-flow guide: ``num_flows`` maps, each with ``num_householder`` reflections,
    then the diagonal affine map; every parameter comes from the encoder."""

    def __init__(
        self,
        x_dim: int,
        z_dim: int,
        num_flows: int = 4,
        num_householder: int = 4,
        min_scale: float = 1e-4,
        **encoder,
    ):
        check_positive(num_flows=num_flows, num_householder=num_householder)
        per_map = z_dim * z_dim + 3 * z_dim + num_householder * z_dim
        super().__init__(x_dim, z_dim, num_flows * per_map, min_scale, **encoder)
        self.num_flows = num_flows
        self.num_householder = num_householder
        self.register_buffer("_upper", torch.ones(z_dim, z_dim).triu(1), persistent=False)

    def transforms(
        self, loc: torch.Tensor, scale: torch.Tensor, params: torch.Tensor
    ) -> list[Transform]:
        d, h = self.z_dim, self.num_householder
        maps = []
        for p in params.chunk(self.num_flows, dim=-1):
            full, r_diag, s_diag, b, v = p.split([d * d, d, d, d, h * d], dim=-1)
            full = full.reshape(*full.shape[:-1], d, d)
            r = full * self._upper + torch.diag_embed(torch.tanh(r_diag))
            s = full.transpose(-1, -2) * self._upper + torch.diag_embed(torch.tanh(s_diag))
            v = v.reshape(*v.shape[:-1], h, d)
            maps.append(ConditionedSylvester(r, s, b, v / v.norm(dim=-1, keepdim=True)))
        return [*maps, affine(loc, scale)]
