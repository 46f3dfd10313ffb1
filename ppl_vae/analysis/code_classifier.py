"""M1's second stage (Kingma et al. 2014): a scikit-learn classifier on a trained VAE's codes.

Each image is encoded by its guide's posterior mean E_q[z | x] (in closed form where the guide
has one, else the mean of draws: ``analysis.units.posterior_means``; several latent sites are
put side by side). The classifier is fit on the codes of the labelled training points alone,
standardized (``StandardScaler``), and scored on the test and validation splits. The same
classifier on the raw pixels of the same labelled points is the baseline M1 has to beat
(``test_accuracy_pixels``). Under dynamic binarization the kind hands it the training points as
one seeded epoch of bits (``Splits.train_epoch``), as fixed as the test split's.

``CLASSIFIERS`` maps ``model.options.classifier`` to a scikit-learn estimator; one line each.
The supervised ones see the labelled codes alone; ``label_spreading`` (``SEMI_SUPERVISED``)
also reads the codes of the unlabelled training images, as Kingma et al.'s M1 + TSVM does.

References: Kingma, Rezende, Mohamed & Welling (2014), Semi-supervised Learning with Deep
Generative Models, NeurIPS (M1: section 2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.errors import InputError
from ..core.registry import lookup
from .units import posterior_means

CODE_SAMPLES = 20  # draws per point where the guide's mean has no closed form


def _logistic(**options: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**{"max_iter": 5000, **options})


def _svm(**options: Any) -> Any:
    from sklearn.svm import SVC

    return SVC(**{"kernel": "rbf", **options})


def _knn(**options: Any) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(**{"n_neighbors": 3, **options})


def _label_spreading(**options: Any) -> Any:
    from sklearn.semi_supervised import LabelSpreading

    defaults = {"kernel": "knn", "n_neighbors": 20, "alpha": 0.2, "max_iter": 100}
    return LabelSpreading(**{**defaults, **options})


# model.options.classifier -> (options -> an unfitted scikit-learn classifier)
CLASSIFIERS: dict[str, Callable[..., Any]] = {
    "logistic": _logistic,
    "svm": _svm,
    "knn": _knn,
    "label_spreading": _label_spreading,
}
# those that also read the unlabelled training points (label -1), transductively, as Kingma et
# al.'s M1 + TSVM does: label spreading over a k-nearest-neighbour graph of all the codes
SEMI_SUPERVISED = {"label_spreading"}


def build_classifier(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """``StandardScaler`` then the classifier ``name`` of ``CLASSIFIERS`` with ``options``
    (its scikit-learn keywords); an unknown name or keyword is an ``InputError`` naming it."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    make = lookup(CLASSIFIERS, name, "classifier")
    try:
        clf = make(**dict(options or {}))
    except TypeError as e:
        raise InputError(
            f"model.options.classifier_options for classifier {name!r}: {e}. Give keywords of "
            f"its scikit-learn class, e.g. {{C = 10.0}} for 'svm' or {{n_neighbors = 5}} for "
            f"'knn'."
        ) from None
    return make_pipeline(StandardScaler(), clf)


def codes(guide: Callable, x: torch.Tensor, num_samples: int = CODE_SAMPLES) -> torch.Tensor:
    """E_q[z | x] for every row of ``x``, ``[N, total latent units]``, as float64."""
    means = posterior_means(guide, x, num_samples=num_samples).mean
    return torch.cat([means[s].reshape(len(x), -1) for s in sorted(means)], dim=1).double()


def accuracy(clf: Any, features: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of ``labels`` that the fitted ``clf`` predicts from ``features``."""
    predicted = torch.as_tensor(clf.predict(features.cpu().numpy()))
    return float((predicted == labels.cpu()).double().mean())


@dataclass
class CodeAccuracy:
    """The per-epoch figures of an M1 run: fit ``classifier`` on the codes of ``x_labelled``
    (labels ``y_labelled``) and score it on the test (and validation) split of the data.

    Called as ``hook(model, guide, data)`` by ``fit`` (``epoch_metrics=``) after each epoch; it
    returns ``test_accuracy``, ``valid_accuracy`` (with a labelled validation split) and, once,
    ``test_accuracy_pixels`` (the same classifier on the labelled points' pixels)."""

    classifier: str
    options: Mapping[str, Any]
    x_labelled: torch.Tensor
    y_labelled: torch.Tensor
    x_unlabelled: torch.Tensor | None = None  # read by SEMI_SUPERVISED classifiers only
    _pixels: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        build_classifier(self.classifier, self.options)  # a bad name or keyword fails now
        if len(self.x_labelled) != len(self.y_labelled) or len(self.y_labelled) == 0:
            raise InputError(
                f"M1 needs labelled points, {len(self.x_labelled)} images with "
                f"{len(self.y_labelled)} labels given; set data.labels to a positive number."
            )

    def _fit(self, features: Callable[[torch.Tensor], torch.Tensor]) -> Any:
        """The classifier fit on ``features`` of the labelled points (and, for a
        semi-supervised one, of the unlabelled ones, labelled -1)."""
        clf = build_classifier(self.classifier, self.options)
        x, y = features(self.x_labelled), self.y_labelled.cpu()
        if self.classifier in SEMI_SUPERVISED and self.x_unlabelled is not None:
            rest = features(self.x_unlabelled)
            x, y = torch.cat([x, rest]), torch.cat([y, y.new_full((len(rest),), -1)])
        clf.fit(x.cpu().double().numpy(), y.numpy())
        return clf

    def fit_codes(self, guide: Callable) -> Any:
        """The classifier fit on the training points' codes."""
        return self._fit(lambda x: codes(guide, x))

    def __call__(self, model: Any, guide: Callable, data: Any) -> dict[str, float]:
        with torch.no_grad():
            clf = self.fit_codes(guide)
            row = {}
            for split in ("valid", "test"):
                y = data.labels.get(split)
                x = data.split(split)
                if y is not None and len(x):
                    row[f"{split}_accuracy"] = accuracy(clf, codes(guide, x), y)
        if self._pixels is None and data.labels.get("test") is not None:
            pixels = self._fit(lambda x: x)
            self._pixels = accuracy(pixels, data.test.double(), data.labels["test"])
        if self._pixels is not None:
            row["test_accuracy_pixels"] = self._pixels
        return row
