"""The tutorial's recursive module: ``TreeNode`` and ``RecursiveLayer`` on compiled kernels.

``RecursiveLayer.forward(*children)`` makes a parent ``f(W [c_1; ..; c_C] +
b)`` of `child_count` nodes and keeps it as ``root``, so trees are built
bottom-up by repeated calls; ``backward(parent_delta)`` back-propagates the
error on the root's weighted input through the whole tree (back propagation
through structure): it sets each node's ``delta``, ``W_grad`` and ``b_grad``;
``update()`` subtracts ``learning_rate`` times them.  The backward pass
flattens the tree into post-order arrays and runs one kernel.

Deviation from the tutorial's published code: a leaf's ``delta`` is the
gradient with respect to the leaf's data, ``(W^T delta_parent)`` restricted
to its slice; the tutorial multiplies it by the activation's derivative at
the leaf's data, which is no gradient of anything when leaves are inputs.
Internal nodes' deltas (errors on their weighted inputs) are the tutorial's.

``forward`` only records the parent: a leaf's data is copied into the
layer's node table, and the parents recorded since are computed together,
with the weights of that moment (as for ``fastnn.tutorial.rnn``, whose
note on weight arrays kept from before ``forward`` holds here too), when a
result is first needed: a parent's ``data`` or ``children_data`` is read,
a weight is reached, or ``backward`` runs (one kernel call for the pending
parents and the whole back propagation).  A NaN or infinite child is
reported then, and again whenever a parent recorded after it in the same
tables (since the last backward or ``reset_state``) is read, even one of
another tree: the pending parents are computed in order.  Each node's ``delta`` is read from the tables of the last
backward that reached it.  A tree whose nodes were rewired after forward
(a node given two parents, a leaf given children, a parent's ``children``
assigned, a parent of an earlier tree used as a child) goes through the
general path, which walks the node objects as the tutorial does.
"""

from array import array
from itertools import count

import numpy as np

from .._checks import check_int, rate_attribute
from .._memory import aligned_zeros
from ..kernels import recursive as _kernels
from ..kernels.optim import descend
from .activators import activation_code
from .rnn import FLOAT64, column, ndarray, transposed_property, view_property, weight_source

_stamps = count(1)  # orders the backward passes, so that a node shows the delta of the latest


class TreeNode:
    """A tree node: ``data`` ``(width, 1)``, ``children`` (a list), ``children_data`` (their
    concatenation, for a parent made by ``RecursiveLayer.forward``), ``parent``, and ``delta``
    after a backward pass."""

    _slot = None  # (forest, row) once a RecursiveLayer keeps this node's data in a row of its tables

    def __init__(self, data, children=(), children_data=None):
        self.parent = None
        self.children = list(children)
        self.children_data = children_data
        self.data = data
        for i, child in enumerate(self.children):
            if not isinstance(child, TreeNode):
                raise TypeError(f"children[{i}] must be a TreeNode, got {type(child).__name__}")
            child.parent = self

    @property
    def delta(self):
        """The error the latest backward pass through this node gave it (see the module docstring)."""
        own = self.__dict__.get("_delta")  # (stamp, array): set by the general path or assigned
        found = _table_delta(self)
        if found is not None and (own is None or own[0] < found[0]):
            return found[1]
        if own is None:
            raise AttributeError("delta is set by RecursiveLayer.backward()")
        return own[1]

    @delta.setter
    def delta(self, value):
        self._delta = (next(_stamps), value)

    def __repr__(self):
        return f"TreeNode(width={np.size(self.data)}, children={len(self.children)})"


def _table_delta(node):
    """``(stamp, delta)`` from the tables of the backward pass that last reached `node`'s row, or None."""
    slot = node._slot
    if slot is None:
        return None
    forest, row = slot
    if not forest.stamp or not forest.reached[row]:
        return None
    return forest.stamp, forest.table[row].reshape(-1, 1)


class _Forest:
    """The node tables of the trees a RecursiveLayer builds between two backward passes.

    ``nodes`` ``(capacity, D)`` holds rows in the order forward meets them
    (a leaf's copied data, a parent's computed data); ``links`` holds, per
    forward call, the children's rows and then the parent's row
    (``fastnn.kernels.recursive``); ``computed`` parents are done.
    """

    def __init__(self, layer):
        self.layer = layer
        width = layer.node_width
        self.nodes = np.empty((64, width))
        self.columns = self.nodes[:, :, None]
        self.capacity = 64
        self.links = array("q")
        self.children_data = np.empty((self.capacity, width * layer.child_count))  # a row per internal node
        self.rows = self.internal = self.computed = 0
        self.leaves = []
        self.mixed = self.closed = False  # mixed: the general path must run
        self.stamp = 0
        self.reached = self.table = None

    # Pickle copies a view as an array of its own: keep the rows, make the view again.
    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key != "columns"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.columns = self.nodes[:, :, None]

    def grow(self):
        self.capacity *= 2
        grown = np.empty((self.capacity, self.nodes.shape[1]))
        grown[:self.rows] = self.nodes[:self.rows]
        self.nodes, self.columns = grown, grown[:, :, None]

    def tables(self):
        """``(links (I, C+1), children_data (I, C*D))`` for a kernel call.

        links views a copy of ``self.links``: a kernel's first call in a process (the one that compiles it)
        keeps a reference to its arguments, and a view of ``self.links`` would then forbid forward to extend it.
        """
        if self.children_data.shape[0] < self.internal:
            grown = np.empty((2 * self.internal, self.children_data.shape[1]))
            grown[:self.computed] = self.children_data[:self.computed]
            self.children_data = grown
        per_node = self.layer.child_count + 1  # the links of a forward call in progress are left out
        return np.frombuffer(self.links[:self.internal * per_node], np.int64).reshape(-1, per_node), self.children_data

    def add_leaf(self, node, index, width):
        """Copy `node`'s data into the next row; returns the row."""
        if not isinstance(node, TreeNode):
            raise TypeError(f"children[{index}] must be a TreeNode, got {type(node).__name__}")
        row = self.rows
        data = node.data
        if type(data) is ndarray and data.dtype is FLOAT64 and data.shape == (width, 1):
            self.columns[row] = data
        else:
            self.nodes[row] = column(data, f"children[{index}].data", width)[:, 0]
        slot = node._slot
        if slot is not None:
            if slot[0] is self:  # the same leaf twice in these tables: maybe under one root twice
                self.mixed = True
            elif type(node) is not _Parent:
                found = _table_delta(node)  # keep the delta of the tree it belonged to
                if found is not None and found[0] > node.__dict__.get("_delta", (0,))[0]:
                    node._delta = found
        if type(node) is _Parent or node.children:
            self.mixed = True  # a parent of an earlier tree, or a leaf with children: not a leaf here
        else:
            node._slot = (self, row)
            self.leaves.append(node)
        self.rows = row + 1
        return row


class _Parent(TreeNode):
    """A node made by ``RecursiveLayer.forward``: its data and children_data live in the layer's tables."""

    def __init__(self, forest, row, index, children):
        self.parent = None
        self._children = list(children)
        self._slot = (forest, row)
        self._index = index
        for child in children:
            child.parent = self

    def _ready(self):
        forest = self._slot[0]
        if forest.computed <= self._index:
            forest.layer._settle(forest)
        return forest

    @property
    def data(self):
        forest, row = self._ready(), self._slot[1]
        return forest.nodes[row].reshape(-1, 1)

    @data.setter
    def data(self, value):
        forest = self._ready()
        forest.nodes[self._slot[1]] = column(value, "data", forest.nodes.shape[1])[:, 0]

    @property
    def children_data(self):
        return self._ready().children_data[self._index].reshape(-1, 1)

    @property
    def children(self):
        return self._children

    @children.setter
    def children(self, value):
        self._slot[0].mixed = True
        self._children = value


def post_order(root, children_of, child_count, what):
    """Flatten a tree without recursion (any depth): ``(leaves, internal, children, root_code)``.

    ``children_of(node)`` returns None for a leaf, else the node's children.
    `leaves` lists the leaf objects in the order they are reached, `internal`
    the internal ones in post-order (node p); ``children`` is an ``(I, child_count)``
    int64 array whose entries are ``~i`` (negative) for leaf i and p for
    internal node p; root_code encodes the root the same way.  Raises
    ValueError for an internal node with the wrong number of children, and
    for a cycle or an internal node reached twice (a shared node).
    """
    leaves, internal, rows, seen = [], [], [], set()

    def code_of(node):
        kids = children_of(node)
        if kids is None:
            leaves.append(node)
            return ~(len(leaves) - 1), None
        if len(kids) != child_count:
            raise ValueError(f"{what}: every internal node must have {child_count} children, "
                             f"found one with {len(kids)}")
        if id(node) in seen:
            raise ValueError(f"{what} is not a tree: a node is reached twice (a shared node or a cycle)")
        seen.add(id(node))
        return None, [node, list(kids), []]

    code, frame = code_of(root)
    if frame is None:
        return leaves, internal, np.zeros((0, child_count), np.int64), code
    stack = [frame]
    while stack:
        node, kids, done = stack[-1]
        if len(done) == len(kids):
            stack.pop()
            rows.append(done)
            internal.append(node)
            finished = len(rows) - 1
            if not stack:
                return leaves, internal, np.array(rows, np.int64).reshape(-1, child_count), finished
            stack[-1][2].append(finished)
            continue
        code, frame = code_of(kids[len(done)])
        if frame is None:
            done.append(code)
        else:
            stack.append(frame)


def _children_of(node):
    """A node's children for :func:`post_order` (None for a leaf); TypeError for what is no TreeNode."""
    if not isinstance(node, TreeNode):
        raise TypeError(f"the tree under root holds a child of type {type(node).__name__}, not a TreeNode")
    return node.children or None


def node_rows(codes, n_leaves):
    """Node-table rows for :func:`post_order` codes: leaf i -> i, internal node p -> n_leaves + p."""
    codes = np.asarray(codes, np.int64)
    return np.where(codes < 0, ~codes, n_leaves + codes)


class RecursiveLayer:
    """``RecursiveLayer(node_width, child_count, activator, learning_rate)``.

    ``W`` ``(node_width, node_width*child_count)`` uniform in [-1e-4, 1e-4]
    (a view of the kernel's input-major storage: writing ``layer.W[i, j]``
    takes effect in the next forward), ``b`` ``(node_width, 1)`` zeros,
    ``root`` the last parent made; ``W_grad`` and ``b_grad`` after backward.
    `rng` (fastnn's addition) draws the initial weights instead of numpy's
    global generator.
    """

    W = transposed_property("W", "_weight", "``(node_width, node_width*child_count)``")
    b = view_property("b", lambda self: self._bias.reshape(-1, 1), "``(node_width, 1)``")
    learning_rate = rate_attribute()

    def __init__(self, node_width, child_count, activator, learning_rate, rng=None):
        self.node_width = check_int(node_width, "node_width", 1)
        self.child_count = check_int(child_count, "child_count", 1)
        self._code = activation_code(activator)
        self.activator = activator
        self.learning_rate = learning_rate
        inputs = node_width * child_count
        # [W^T | b], which the kernels and update take whole; cache-line aligned as fastnn.tutorial.lstm's weights
        self._params = aligned_zeros((inputs + 1) * node_width)
        self._bind()
        self._weight.T[...] = weight_source(rng)(-1e-4, 1e-4, (node_width, inputs))
        self._grads = None
        self._forest = None
        self.root = None

    def _bind(self):
        """Make the views of the flat parameters (after construction or unpickling)."""
        cut = self.node_width * self.child_count * self.node_width
        self._weight = self._params[:cut].reshape(-1, self.node_width)
        self._bias = self._params[cut:]

    # Pickle copies a view as an array of its own: keep the flat parameters, make the views again.
    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key not in ("_weight", "_bias")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind()

    def reset_state(self):
        try:
            self._settle()  # the parents made so far keep the weights of their forward
        except ValueError:
            pass  # a NaN child: reading a parent recorded after it reports it (module docstring)
        self._forest = None
        self.root = None

    def _settle(self, forest=None):
        """Compute the parents recorded in `forest` (the current tables by default) and not computed yet."""
        forest = forest or self._forest
        if forest is not None and forest.computed != forest.internal:
            links, children_data = forest.tables()
            bad = _kernels.forest_forward(forest.nodes, links, children_data, self._params, self._code,
                                          forest.computed, forest.internal)
            self._checked(forest, bad)

    def _checked(self, forest, bad):
        """Raise for the child a kernel found not finite (`bad` >= 0, see forest_forward); else mark all done."""
        if bad >= 0:
            call, child = divmod(bad, self.child_count)
            forest.computed = call
            raise ValueError(f"children[{child}].data contains NaN or infinity (in forward call {call + 1} "
                             f"since the last backward or reset_state)")
        forest.computed = forest.internal

    def forward(self, *children):
        """Make ``root = TreeNode(f(W children_data + b), children, children_data)`` (computed when read)."""
        count = self.child_count
        if len(children) != count:
            raise ValueError(f"forward takes {count} children, got {len(children)}")
        if count == 2 and children[0] is children[1] or count > 2 and len(set(map(id, children))) != count:
            i = next(i for i, child in enumerate(children) if any(child is other for other in children[:i]))
            raise ValueError(f"children[{i}] is passed twice: a node can have only one parent")
        forest = self._forest
        if forest is None or forest.closed:
            forest = self._forest = _Forest(self)
        if forest.rows + count >= forest.capacity:
            forest.grow()
        links, rows, leaves = forest.links, forest.rows, len(forest.leaves)
        try:
            for i, child in enumerate(children):
                slot = child._slot if type(child) is _Parent else None
                if slot is not None and slot[0] is forest and child.parent is None:
                    links.append(slot[1])
                else:
                    links.append(forest.add_leaf(child, i, self.node_width))
        except Exception:
            del links[len(links) - i:]  # forget this call's rows
            forest.rows = rows
            for leaf in forest.leaves[leaves:]:
                leaf._slot = None
            del forest.leaves[leaves:]
            raise
        row = forest.rows
        links.append(row)
        forest.rows = row + 1
        self.root = _Parent(forest, row, forest.internal, children)
        forest.internal += 1

    def backward(self, parent_delta):
        """Back propagation through structure from ``parent_delta`` (``(node_width, 1)``, error on the root's net)."""
        root = self.root
        if root is None:
            raise RuntimeError("RecursiveLayer.backward called before forward()")
        delta = column(parent_delta, "parent_delta", self.node_width)
        forest = self._forest
        if type(root) is _Parent and root._slot[0] is forest and not forest.mixed \
                and not any(leaf.children for leaf in forest.leaves):
            self._backward_tables(forest, root, delta)
        else:
            self._backward_objects(root, delta)

    def _backward_tables(self, forest, root, delta):
        """The tree was built by forward alone: one kernel call over the layer's tables."""
        links, children_data = forest.tables()
        reached, table = np.empty(forest.rows, np.uint8), np.empty((forest.rows, self.node_width))
        grads = np.empty_like(self._params)
        bad = _kernels.forest_backward(forest.nodes, links, children_data, self._params, self._code, forest.computed,
                                       forest.internal, root._index, delta, reached, table, grads)
        self._checked(forest, bad)
        forest.reached, forest.table, forest.stamp = reached, table, next(_stamps)
        forest.closed = True  # the next forward starts new tables
        self._grads = grads

    def _backward_objects(self, root, delta):
        """The general path: flatten the tree by walking its node objects, as the tutorial's recursion does."""
        self._settle()
        width = self.node_width
        leaves, internal, codes, root_code = post_order(root, _children_of, self.child_count, "the tree under root")
        n_leaves, n_internal = len(leaves), codes.shape[0]
        if len({id(leaf) for leaf in leaves}) != n_leaves:
            raise ValueError("the tree under root is not a tree: a leaf is reached twice (a shared node)")
        nodes = np.empty((n_leaves + n_internal, width))
        for i, node in enumerate(leaves + internal):
            nodes[i] = column(node.data, "node data", width)[:, 0]
        children_data = np.ascontiguousarray(nodes[node_rows(codes, n_leaves)].reshape(n_internal, -1))
        node_grads = np.empty_like(nodes)
        deltas = np.empty((n_internal, width))
        grads = np.empty_like(self._params)
        grad_weight, grad_bias = grads[:self._weight.size].reshape(self._weight.shape), grads[self._weight.size:]
        _kernels.tree_backward_serial(nodes, node_rows(codes, n_leaves), np.array([0, n_internal], np.int64),
                                      np.array([n_leaves + root_code], np.int64), n_leaves, children_data,
                                      self._weight, self._code, delta.T.copy(), True, node_grads, deltas, grad_weight,
                                      grad_bias)
        for i, node in enumerate(leaves):
            node.delta = node_grads[i].reshape(width, 1)
        for p, node in enumerate(internal):
            node.delta = deltas[p].reshape(width, 1)
        self._grads = grads

    def _gradient(self, which):
        if self._grads is None:
            raise AttributeError(f"{which} is set by backward()")
        size = self._weight.size
        if which == "W_grad":
            return self._grads[:size].reshape(self._weight.shape).T
        return self._grads[size:].reshape(-1, 1)

    W_grad = property(lambda self: self._gradient("W_grad"), doc="W's gradient, summed over the tree.")
    b_grad = property(lambda self: self._gradient("b_grad"), doc="b's gradient ``(node_width, 1)``.")

    def update(self):
        """``W -= learning_rate * W_grad``, ``b -= learning_rate * b_grad``."""
        if self._grads is None:
            raise RuntimeError("RecursiveLayer.update called before backward()")
        self._settle()
        descend(self._params, self._grads, self.learning_rate)

    def dump(self, dump_grad=False):
        """Print the root's data and children_data (and the gradients with ``dump_grad=True``)."""
        if self.root is None:
            raise RuntimeError("RecursiveLayer.dump called before forward()")
        print(f"root.data: {self.root.data}")
        print(f"root.children_data: {self.root.children_data}")
        if dump_grad:
            print(f"W_grad: {self.W_grad}")
            print(f"b_grad: {self.b_grad}")
