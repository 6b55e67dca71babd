"""``TreeRNN``: the recursive (tree) network over a batch of trees of different shapes, in one kernel call.

A tree is written as nested tuples (or lists): an integer is a leaf, the row
of the batch's ``leaves`` array that holds its vector; a tuple of
``child_count`` items is an internal node.  ``((0, 1), 2)`` combines leaves 0
and 1, then the result with leaf 2.  Each row of ``leaves`` is used by
exactly one leaf of the batch.  :class:`TreeBatch` flattens the trees once
into post-order arrays; ``TreeRNN.forward(batch)`` computes every internal
node ``f(W [c_1; ..; c_C] + b)`` and returns the roots.
"""

import numbers

import numpy as np

from .._checks import as_float_array, check_int, describe_shape, make_rng
from ..kernels import recursive as _kernels
from ..kernels.optim import all_finite
from ..tutorial.recursive import post_order
from .base import Layer, check_dtype
from .recurrent import ACTIVATIONS


class TreeBatch:
    """A batch of trees with their leaf vectors, flattened for the kernels.

    ``TreeBatch(trees, leaves, child_count=2)``: `trees` a list of nested
    tuples (see the module docstring), `leaves` an ``(L, D)`` array.
    Attributes: ``leaves``, ``children`` ``(I, child_count)`` (node-table
    rows: leaf i is row i, internal node p row L + p), ``tree_offsets``
    ``(K+1,)`` (tree k owns internal nodes ``tree_offsets[k] ..
    tree_offsets[k+1]-1``), ``roots`` ``(K,)`` (node-table rows).  They
    are read-only: the kernels trust the indices, and :meth:`with_leaves`
    reuses the structure with new leaf vectors.
    """

    leaves = property(lambda self: self._leaves, doc="``(L, D)``: row i is leaf i's vector.")
    children = property(lambda self: _read_only(self._children), doc="``(I, child_count)`` node-table rows.")
    tree_offsets = property(lambda self: _read_only(self._tree_offsets), doc="``(K+1,)`` internal-node ranges.")
    roots = property(lambda self: _read_only(self._roots), doc="``(K,)`` node-table rows of the roots.")

    def __init__(self, trees, leaves, child_count=2):
        self.child_count = check_int(child_count, "child_count", 1)
        if isinstance(trees, (str, bytes)) or not hasattr(trees, "__len__"):
            raise TypeError(f"trees must be a list of trees, got {type(trees).__name__}")
        if len(trees) == 0:
            raise ValueError("trees must hold at least one tree")
        self._leaves = _leaf_array(leaves)
        n_leaves = self._leaves.shape[0]
        owner = np.full(n_leaves, -1, np.int64)
        children, offsets, roots = [], [0], []
        for k, tree in enumerate(trees):
            what = f"trees[{k}]"
            leaf_rows, _, codes, root_code = post_order(tree, _children_of, self.child_count, what)
            rows = np.array([_leaf_row(r, n_leaves, what) for r in leaf_rows], np.int64)
            for r in rows:
                if owner[r] >= 0:
                    raise ValueError(f"{what}: leaf row {r} is already used by trees[{owner[r]}] "
                                     f"(a shared node); each row of leaves belongs to one leaf")
                owner[r] = k
            # post_order numbers leaves by visit order: map them to their rows, internal nodes after the
            # leaves and the earlier trees' internal nodes.
            base = offsets[-1]
            leaf = codes < 0
            children.append(np.where(leaf, rows[np.where(leaf, ~codes, 0)], n_leaves + base + codes))
            roots.append(rows[~root_code] if root_code < 0 else n_leaves + base + root_code)
            offsets.append(base + codes.shape[0])
        unused = np.flatnonzero(owner < 0)
        if unused.size:
            raise ValueError(f"leaves rows {unused[:5].tolist()}{' ...' if unused.size > 5 else ''} are used by "
                             f"no tree; every row of leaves must be a leaf of one tree")
        self._children = np.ascontiguousarray(np.concatenate(children).reshape(-1, self.child_count), np.int64)
        self._tree_offsets = np.array(offsets, np.int64)
        self._roots = np.array(roots, np.int64)

    def __len__(self):
        return self._roots.shape[0]

    @property
    def n_internal(self):
        return self._children.shape[0]

    def with_leaves(self, leaves):
        """The same trees with new leaf vectors ``(L, D)`` (L as before)."""
        leaves = _leaf_array(leaves)
        if leaves.shape[0] != self._leaves.shape[0]:
            raise ValueError(f"leaves must have {self._leaves.shape[0]} rows like the batch's, got {leaves.shape[0]}")
        other = object.__new__(TreeBatch)
        other.__dict__.update(self.__dict__, _leaves=leaves)
        return other


def _read_only(array):
    view = array.view()
    view.flags.writeable = False
    return view


def _leaf_array(leaves):
    """`leaves` as a C-contiguous 2-D float array, float32 kept as float32, anything else float64."""
    dtype = np.float32 if getattr(leaves, "dtype", None) == np.float32 else np.float64
    return as_float_array(leaves, "leaves", dtype, ndim=2)


def _children_of(node):
    if isinstance(node, (tuple, list)):
        return node
    if isinstance(node, numbers.Integral) and not isinstance(node, bool):
        return None
    raise TypeError(f"a tree node must be a tuple of children or an integer leaf row, got {node!r}")


def _leaf_row(value, n_leaves, what):
    row = int(value)
    if not 0 <= row < n_leaves:
        raise ValueError(f"{what}: leaf row {row} is out of range for leaves with {n_leaves} rows")
    return row


class TreeRNN(Layer):
    """Recursive network: each internal node is ``f(concat(children) @ weight + bias)``.

    ``TreeRNN(node_size, child_count=2, activation="tanh", dtype=np.float32,
    rng=None)``.  Parameters: ``weight`` ``(child_count*node_size,
    node_size)`` (input-major: the tutorial's ``W`` transposed), ``bias``
    ``(node_size,)``.  ``forward(batch)`` takes a :class:`TreeBatch` with
    ``(L, node_size)`` leaves and returns the roots ``(K, node_size)``; after
    it, ``node_states`` holds every node's vector (the node table).
    ``backward(grad_output)`` takes ``dE/droot`` ``(K, node_size)`` and
    returns ``dE/dleaves`` ``(L, node_size)``.  Trees run in parallel.
    """

    def __init__(self, node_size, child_count=2, activation="tanh", dtype=np.float32, rng=None):
        super().__init__()
        self.node_size = check_int(node_size, "node_size", 1)
        self.child_count = check_int(child_count, "child_count", 1)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self._code = ACTIVATIONS[activation]
        self.dtype = check_dtype(dtype)
        fan_in = self.child_count * self.node_size
        scale = 1.0 / np.sqrt(fan_in)
        self.params["weight"] = make_rng(rng).uniform(-scale, scale, (fan_in, self.node_size)).astype(self.dtype)
        self.params["bias"] = np.zeros(self.node_size, self.dtype)
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}
        self._cache = None

    def forward(self, batch):
        if not isinstance(batch, TreeBatch):
            raise TypeError(f"TreeRNN.forward takes a TreeBatch, got {type(batch).__name__}")
        if batch.child_count != self.child_count:
            raise ValueError(f"the batch's trees have {batch.child_count} children per node, "
                             f"this layer combines {self.child_count}")
        width = self.node_size
        leaves = batch.leaves
        if leaves.shape[1] != width:
            raise ValueError(f"leaves must have shape {describe_shape((None, width))} (node_size {width}), "
                             f"got {describe_shape(leaves.shape)}")
        n_leaves = leaves.shape[0]
        nodes = np.empty((n_leaves + batch.n_internal, width), self.dtype)
        with np.errstate(over="ignore"):
            nodes[:n_leaves] = leaves
        if not all_finite(nodes[:n_leaves]):  # changed since the batch was made, or beyond float32's range
            raise ValueError(f"leaves contains NaN or infinity, or values beyond the range of {self.dtype}")
        children_data = np.empty((batch.n_internal, self.child_count * width), self.dtype)
        forward = _kernels.tree_forward_serial if self._serial(batch) else _kernels.tree_forward
        forward(nodes, batch._children, batch._tree_offsets, n_leaves, self.params["weight"],
                self.params["bias"], self._code, children_data)
        self._cache = (batch, nodes, children_data)
        return nodes[batch._roots]

    @property
    def node_states(self):
        """Every node's vector after forward, ``(L + I, node_size)`` (the node table; read-only: backward
        reads it)."""
        if self._cache is None:
            raise AttributeError("node_states is set by forward()")
        return _read_only(self._cache[1])

    def backward(self, grad_output):
        batch, nodes, children_data = self._require("_cache")
        grad = self._input(grad_output, (self.node_size,), "grad_output")
        if grad.shape[0] != len(batch):
            raise ValueError(f"grad_output must hold {len(batch)} rows (one per tree), got {grad.shape[0]}")
        node_grads = np.empty_like(nodes)
        deltas = np.empty((batch.n_internal, self.node_size), self.dtype)
        n_leaves = batch.leaves.shape[0]
        backward = _kernels.tree_backward_serial if self._serial(batch) else _kernels.tree_backward
        backward(nodes, batch._children, batch._tree_offsets, batch._roots, n_leaves, children_data,
                 self.params["weight"], self._code, grad, False, node_grads, deltas,
                 self.grads["weight"], self.grads["bias"])
        return node_grads[:n_leaves]

    def _serial(self, batch):
        """Whether the kernels run on the calling thread: one tree or little work (see kernels.recursive)."""
        return _kernels.serial(len(batch), batch.n_internal * self.params["weight"].size)

    def output_shape(self, input_shape):
        return (self.node_size,)

    def get_config(self):
        return dict(node_size=self.node_size, child_count=self.child_count, activation=self.activation,
                    dtype=self.dtype.name)
