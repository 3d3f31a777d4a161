"""The type vocabularies of parameter graphs. Append-only: an index, once given, keeps its meaning.

``NODE_TYPES`` (``ParameterGraph.node_type``) says what produced a neuron:

* ``input``: an input neuron (a feature of an MLP input, a channel of a CNN input);
* ``linear`` / ``conv``: an output neuron of ``nn.Linear`` / an output channel of a convolution;
* ``<op>+<norm>``: the same, with a normalisation fused onto the neuron (its γ, β and running
  statistics are the node's features); a norm is fused when it directly follows the layer;
* ``batchnorm`` / ``layernorm`` / ``groupnorm`` / ``rmsnorm`` / ``instancenorm`` /
  ``batchnorm_batchstats``: a normalisation that does not directly follow a linear or conv
  layer (e.g. applied to a residual sum); one node per channel, fed by an ``identity`` edge
  from the channel it normalises. ``batchnorm`` normalises by per-channel running statistics
  (BatchNorm in eval mode, InstanceNorm with ``track_running_stats``),
  ``batchnorm_batchstats`` by the statistics of the batch (``track_running_stats=False``),
  ``instancenorm`` per sample over the positions. A norm without affine parameters has the
  constants γ = 1, β = 0 (the same function); its ε is ``node_spec``'s ``norm_eps``;
* ``sum``: the sum of two values when neither operand can carry it (e.g. ``x + x``), or a value
  plus a learned or constant bias (``x + self.bias``, its node feature);
* ``scale``: a value times a constant or a learned factor (layer scale ``self.gamma * x``), the
  factor on its incoming ``scale`` edges;
* ``product``: the elementwise product of two values (a gate: squeeze-and-excitation,
  ``x * torch.sigmoid(x)``), fed by ``product`` edges from both;
* ``concat``: a concatenation of values along the features (Fourier features
  ``cat([sin(Bx), cos(Bx)], -1)``), fed one to one; its neurons do not move;
* ``activation``: an activation applied to a value that already has one, or that is used elsewhere;
* ``attention_query`` / ``attention_key`` / ``attention_value``: the projections of
  ``nn.MultiheadAttention`` (one node per embedding dimension);
* ``token``: a token position of a sequence (a ViT's class token, or each position of its
  position embeddings); like an input neuron it never moves, ``node_io_pos`` is its token.

Output neurons keep the type of the layer that produced them; ``node_io_pos >= 0`` marks them.

``EDGE_TYPES`` (``ParameterGraph.edge_type``):

* ``linear`` / ``conv``: a weight (one edge per kernel position, or per channel pair);
* ``residual``: a skip connection of a residual addition (constant weight 1);
* ``identity``: feeds a standalone norm / sum / activation node (constant weight 1);
* ``linear_from_spatial``: a linear weight reading a flattened C×S feature map; the S spatial
  positions of a channel form a 1×S kernel;
* ``attention``: query and key dimension ``i`` → value dimension ``i`` of the same attention
  (constant weight 1): the query-key products decide how the values are mixed;
* ``token_embedding``: a learned embedding added to the tokens of a ``token`` node: its class
  token or position embedding entry for one feature;
* ``scale``: feeds a ``scale`` node; its weight is the factor (constant or learned);
* ``product``: feeds a ``product`` node (constant weight 1);
* ``conv_transpose``: a transposed convolution's kernel from an input to an output channel
  (its output neurons have the node type ``conv``);
* ``embedding``: from an entry of a lookup table (an input neuron of an ``nn.Embedding``
  reading ids) to an embedding dimension; its weight is the table's entry.

``ACTIVATIONS`` (``ParameterGraph.node_act``, the function applied after the neuron; its argument,
e.g. the SIREN ω₀, the leaky-ReLU slope or a PReLU's learned slope, is in ``node_act_arg``).
``unknown`` is recorded when a layout is inferred from state_dict keys, which do not say which
activation the network used. ``clamp(x, a, b)`` (hardtanh, clip) is ``clamp_min`` (argument a)
followed by ``clamp_max`` (argument b) on an ``activation`` node.
The functions themselves are in :mod:`gmn.graph.activations` (one record per name);
``gmn.register_activation`` appends user-defined names at run time.
"""

from __future__ import annotations

NODE_TYPES = (
    "input",
    "linear",
    "conv",
    "linear+batchnorm",
    "conv+batchnorm",
    "linear+layernorm",
    "linear+groupnorm",
    "conv+groupnorm",
    "batchnorm",
    "layernorm",
    "groupnorm",
    "sum",
    "activation",
    "attention_query",
    "attention_key",
    "attention_value",
    "token",
    "batchnorm_batchstats",
    "instancenorm",
    "conv+instancenorm",
    "rmsnorm",
    "linear+rmsnorm",
    "scale",
    "product",
    "concat",
)

EDGE_TYPES = ("linear", "conv", "residual", "identity", "linear_from_spatial", "attention",
              "token_embedding", "scale", "product", "embedding", "conv_transpose")

ACTIVATIONS = (
    "identity",
    "relu",
    "leaky_relu",
    "gelu",
    "tanh",
    "sigmoid",
    "silu",
    "elu",
    "softplus",
    "sine",
    "unknown",
    "gelu_tanh",
    "hardswish",
    "hardsigmoid",
    "mish",
    "relu6",
    "cosine",
    "prelu",
    "selu",
    "softsign",
    "celu",
    "quick_gelu",
    "clamp_min",
    "clamp_max",
    "logsigmoid",
    "tanhshrink",
    "softshrink",
    "hardshrink",
)

# The vocabulary sizes whose embedding rows a GMN draws at random; rows of entries appended
# later start at zero (gmn.nn.encoders.vocabulary_embedding), so growing a vocabulary changes
# no existing model's initialisation.
DRAWN_SIZES = {"node_types": 17, "edge_types": 7, "activations": 18}

NODE_TYPE = {name: i for i, name in enumerate(NODE_TYPES)}
EDGE_TYPE = {name: i for i, name in enumerate(EDGE_TYPES)}
ACTIVATION = {name: i for i, name in enumerate(ACTIVATIONS)}
