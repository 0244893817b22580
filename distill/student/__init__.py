"""The student model (bottleneck embedding + recurrent BERT layers) and its export."""

from distill.student.modeling_xlsearch import (
    BottleneckEmbeddings,
    XLSearchRecurrentConfig,
    XLSearchRecurrentModel,
    effective_parameters,
    stored_parameters,
)

__all__ = [
    "BottleneckEmbeddings",
    "XLSearchRecurrentConfig",
    "XLSearchRecurrentModel",
    "effective_parameters",
    "stored_parameters",
]
