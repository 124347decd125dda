"""Questions that ask why: predictions in notebooks 00 to 10, where the skill is understanding.

Each is a ``Prediction`` (``bpcourse.exercises.prediction``): the learner picks
a letter, or gives a sign or a number, and the check explains the answer once
it is right. The choices themselves are written in the notebook, next to the
function; every wrong choice is false in general, not only in the example.
"""

from __future__ import annotations

from bpcourse.exercises.prediction import Prediction, predict

N00, N01, N02, N03 = (
    "00_start_here",
    "01_scalar_graphs",
    "02_merges_and_traversal",
    "03_affine_and_activations",
)
N04, N05, N06, N07 = (
    "04_softmax_cross_entropy",
    "05_minibatches_and_training",
    "06_vanishing_and_exploding",
    "07_cost_of_backprop",
)
N08, N09, N10 = (
    "08_build_your_own_engine",
    "09_modular_layers_and_digits",
    "10_rules_transformers_need",
)
ABCD = ("a", "b", "c", "d")

WHY_BACKPROP_IS_CHEAP = predict(
    "why_backprop_is_cheap",
    N00,
    "why backprop costs a few forward passes where nudging each parameter costs P of them",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="c",
        explanation="each δ = ∂L/∂z is computed once, from the cached forward values and local derivatives, "
        "and then shared by every parameter that feeds z: no work is repeated per parameter",
        hint="think about what a nudge of one parameter recomputes, and what backprop computes only once",
        wrong={
            "a": "backprop does not nudge anything: there is no step size in it at all",
            "b": "backprop computes the exact gradient (up to round-off), not an approximation",
            "d": "a zero gradient is still computed: backprop does not know it is zero before computing it",
        },
    ),
    revisit="the engine in five minutes: one backward pass fills in every gradient",
)

WHY_MUL_SCALES = predict(
    "why_mul_scales",
    N01,
    "z = x·y: the factor by which dL/dy changes when x doubles",
    Prediction(
        kind="number",
        answer=2,
        explanation="dL/dy = upstream · ∂z/∂y and ∂z/∂y = x: the gradient of one factor is proportional "
        "to the other factor",
        hint="dL/dy is the upstream gradient times the local derivative ∂z/∂y: which numbers does that "
        "local derivative depend on?",
        wrong={
            1: "the local derivative of a product in one factor is not a constant: "
            "it depends on the other factor",
            0.5: "the local derivative ∂z/∂y grows with x, it does not shrink",
        },
    ),
    revisit="the rules table: Multiply",
)

WHY_STEP_NOT_TINY = predict(
    "why_step_not_tiny",
    N01,
    "why a central difference with h = 1e-12 is worse than with h = 1e-5 in float64",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="d",
        explanation="f(x + h) and f(x − h) share almost all their digits, so their difference keeps mostly "
        "round-off, and dividing by 2h magnifies it: the round-off error grows like 1/h",
        hint="the truncation error of a central difference shrinks like h²: look for what grows as h shrinks",
        wrong={
            "a": "a central difference's truncation error shrinks like h² as h shrinks: "
            "it is not the culprit",
            "b": "1e-12 is a perfectly ordinary float64, far above the smallest one (about 1e-308)",
            "c": "a differentiable function is differentiable at every scale: it is the arithmetic, not "
            "the function, that fails",
        },
    ),
    revisit="finite differences and the choice of h",
)

WHY_REVERSE_ORDER = predict(
    "why_reverse_order",
    N02,
    "why the backward pass visits the nodes in reverse topological order",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="b",
        explanation="∂L/∂v sums one contribution from every node that uses v, and every such node comes "
        "after v in a topological order: walked in reverse, all of them have sent theirs before v is used",
        hint="ask when the gradient of a node is complete: which nodes must have sent their contributions "
        "to it first?",
        wrong={
            "a": "any order does not do: a node used before all its users have sent their contributions "
            "passes on an incomplete gradient",
            "c": "products of numbers do not depend on their order; the order matters for when a gradient "
            "is complete",
            "d": "the forward pass can store its values in any order; what matters is which gradients are "
            "complete when a node is reached",
        },
    ),
    revisit="the order of the backward pass: reverse topological order",
)

MERGE_SLOPE = predict(
    "merge_slope",
    N02,
    "u = 3x, v = x², L = u + v: dL/dx at x = 2",
    Prediction(
        kind="number",
        answer=7,
        explanation="x is used twice: 3 arrives through u and 2x = 4 through v, "
        "and the two contributions add",
        hint="x is used by two nodes: find the contribution of each path from x to L, then combine them "
        "by the multivariable chain rule",
        wrong={
            3: "that is the contribution through u alone: x is also used by v",
            4: "that is the contribution through v alone: x is also used by u",
            12: "the contributions of two paths add; they do not multiply",
        },
    ),
    revisit="why gradients add up where a value is reused",
)

DEAD_RELU = predict(
    "dead_relu_gradient",
    N03,
    "a ReLU unit with z < 0 on every example: each entry of the gradient of its row of W",
    Prediction(
        kind="number",
        answer=0,
        explanation="the ReLU passes back nothing where z < 0, so that unit's δ is 0 on every example, "
        "and its row of the weight gradient is built from δ alone: the unit cannot learn (a dead ReLU)",
        hint="follow the unit's δ: what does a ReLU pass back where z < 0, and what is the weight "
        "gradient made of?",
    ),
    revisit="the rules table: ReLU (the mask comes from z)",
)

WHY_KEEP_FORWARD = predict(
    "why_keep_forward_values",
    N03,
    "why the forward pass keeps values for the backward pass",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="a",
        explanation="local derivatives are functions of the forward values (x for an affine map's dW, the "
        "output a for tanh and sigmoid, the sign of z for ReLU): kept, they need not be recomputed",
        hint="look at the backward rules of this notebook: what does each one need besides "
        "the upstream gradient?",
        wrong={
            "b": "keeping values costs memory and time in the forward pass; "
            "it makes the backward pass cheaper",
            "c": "the backward pass always comes after the forward pass: it starts from the loss",
            "d": "the values could be recomputed from the inputs; keeping them saves that work",
        },
    ),
    revisit="what the forward pass keeps, and what it costs",
)

TRUE_CLASS_SIGN = predict(
    "true_class_logit_sign",
    N04,
    "one-hot label, class k the true one, p_k < 1: the sign of ∂L/∂z_k",
    Prediction(
        kind="sign",
        answer=-1,
        explanation="∂L/∂z_k = p_k − 1 < 0: raising the true class's logit raises p_k and lowers the loss, "
        "so a descent step raises that logit",
        hint="raising the logit of the true class raises p_k: does that raise or lower −log p_k?",
        wrong={1: "raising the logit of the true class raises p_k: does that raise or lower −log p_k?"},
    ),
    revisit="the gradient at the logits: p - y",
)

WHY_LABELS_SUM_TO_ONE = predict(
    "why_labels_sum_to_one",
    N04,
    "why the gradient p − y needs each label column to sum to 1",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="d",
        explanation="differentiating −Σ y_k log p_k through the softmax gives p_j Σ_k y_k − y_j: "
        "that is p − y exactly when the labels sum to 1",
        hint="differentiate −Σ_k y_k log p_k in z_j without assuming anything about y, using "
        "∂ log p_k/∂z_j = [k = j] − p_j, and look at what multiplies p_j",
        wrong={
            "a": "log p_k is defined whenever p_k > 0, which a softmax always gives: the labels play no part",
            "b": "subtracting two vectors of the same shape is always defined",
            "c": "it does not hold for every label vector: work out the gradient without assuming "
            "anything about the sum of y",
        },
    ),
    revisit="the gradient at the logits: p - y (soft labels follow the same rule)",
)

WHY_BIAS_SUMS = predict(
    "why_bias_gradient_sums",
    N05,
    "why ∂L/∂b is the sum of the columns of G = ∂L/∂Z over the batch",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="c",
        explanation="the same b is added to every column of Z: it is used B times, and the chain rule adds "
        "one contribution per use, the column g_k of each example",
        hint="count how many times b is used in Z = W X + b 1ᵀ, then recall what the chain rule does "
        "for a value used more than once",
        wrong={
            "a": "b has shape (m, 1): one entry per output unit, shared by every example",
            "b": "the mean is not the derivative of this loss: it would be off by the factor B",
            "d": "a mean loss over the batch still uses b once per example: the 1/B is already inside G",
        },
    ),
    revisit="the batched affine rules: sum the per-example contributions over the batch",
)

FLIPPED_SIGN = predict(
    "flipped_sign_training",
    N05,
    "what a gradient with its sign flipped does to training with a small learning rate",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="b",
        explanation="the update θ ← θ − η(−∇L) is a step up the loss: to first order the loss grows by "
        "η‖∇L‖² at every step where the gradient is not zero",
        hint="to first order, a step Δθ changes the loss by ∇L · Δθ: work out the sign of that with "
        "Δθ = +η ∇L",
        wrong={
            "a": "the direction of the step decides whether the loss goes down, not only its speed",
            "c": "the update uses the flipped gradient once: there is no second sign to cancel it",
            "d": "each step is taken from where the last one ended: a first-order look at one step "
            "tells its direction every time",
        },
    ),
    revisit="training with minibatch SGD: θ ← θ − η ∇L",
)

RESIDUAL_HELPS = predict(
    "why_residual_helps",
    N06,
    "why a stack of residual blocks h = x + F(x) keeps early gradients from vanishing",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="a",
        explanation="∂L/∂x = u + J_Fᵀ u: the identity path hands u back unchanged, so when the J_F are small "
        "each block's factor I + J_Fᵀ is close to the identity instead of close to zero",
        hint="write the merge rule for h = x + F(x) and ask what reaches x when J_F is tiny",
        wrong={
            "b": "the merge adds J_Fᵀ u to u; it doubles u only when J_F is the identity",
            "c": "the rule I + J_Fᵀ holds whatever F is; F's Jacobian is not the identity in general",
            "d": "the learning rate plays no part in the gradient that backprop computes",
        },
    ),
    revisit="residual connections: the merge rule for h = x + F(x)",
)

RESIDUAL_EXPLODES = predict(
    "when_residual_explodes",
    N06,
    "when a stack of residual blocks still has exploding gradients",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="c",
        explanation="each block multiplies the gradient by I + J_Fᵀ; when the Jacobians of F are large, "
        "those factors have norms well above 1 and their product can grow exponentially with depth, as in "
        "a plain network",
        hint="each block multiplies the gradient by I + J_Fᵀ: "
        "when can such a factor have a norm far above 1?",
        wrong={
            "a": "I + J_Fᵀ can have a norm far above 1: the identity does not cap the factor",
            "b": "any F with a large Jacobian does it, whatever its activation",
            "d": "biases do not appear in the Jacobian J_F: the weights and the activations' slopes do",
        },
    ),
    revisit="residual connections: the merge rule, and the caveat that follows it",
)

WHEN_FORWARD_MODE = predict(
    "when_forward_mode_wins",
    N07,
    "when forward mode builds a Jacobian in fewer passes than reverse mode",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="b",
        explanation="forward mode gives one column per pass (n passes for n inputs), reverse mode one row "
        "per pass (m passes for m outputs): forward mode needs fewer when n < m",
        hint="count passes: forward mode gives one column of the m × n Jacobian per pass, "
        "reverse mode one row",
        wrong={
            "a": "a scalar loss of many parameters is one output and many inputs: "
            "one row, reverse mode's case",
            "c": "count the passes each mode needs for an m × n Jacobian: neither wins always",
            "d": "the cost of one pass of either mode is a small multiple of the function's: the number of "
            "passes decides",
        },
    ),
    revisit="forward mode and reverse mode: one column or one row per pass",
)

FORWARD_PASSES = predict(
    "forward_passes_needed",
    N07,
    "f from R³ to R⁵⁰⁰: how many forward-mode passes give its whole Jacobian",
    Prediction(
        kind="number",
        answer=3,
        explanation="one Jacobian-vector product per input direction: 3 columns, 3 passes (reverse mode "
        "would need 500)",
        hint="forward mode pushes one input direction through f per pass and gets one column: "
        "count the columns",
        wrong={500: "500 is the number of rows: that is what reverse mode, one row per pass, would need"},
    ),
    revisit="forward mode: a Jacobian-vector product, one column per pass",
)

ASSIGN_AT_MERGE = predict(
    "assign_at_merge",
    N08,
    "L = x·y + x at x = 2, y = 5, a backward pass that assigns instead of adding: what x.grad holds",
    Prediction(
        kind="number",
        answer=5,
        explanation="the reverse walk reaches L before u = x·y, since u is a parent of L: L writes 1 into "
        "x.grad, then u overwrites it with y = 5; the right gradient, 6, is the sum of both, "
        "which adding gives",
        hint="x receives one contribution directly from L and one through u = x·y; with assignment the "
        "later one replaces the earlier: which of the two nodes does the reverse walk reach last?",
        wrong={
            6: "that is dL/dx, the sum of both contributions, which adding gives; with assignment each "
            "contribution replaces the one before it",
            1: "that is the contribution of the direct path; ask which node the reverse walk reaches last, "
            "L or u, and so which contribution stays",
        },
    ),
    revisit="the backward pass: upstream times local, added into each parent",
)

WHY_LEAVES_ACCUMULATE = predict(
    "why_leaves_accumulate",
    N08,
    "why backward() adds into the leaves' gradients across passes instead of setting them afresh",
    Prediction(
        kind="choice",
        choices=ABCD,
        answer="b",
        explanation="the gradient of a sum of losses is the sum of their gradients, so losses "
        "backpropagated one after another (several mini-batches, or several terms of one loss) leave the "
        "gradient of their total in the leaves; the price is that a training loop clears them "
        "before each step",
        hint="think of a loss too large for one pass, split into parts backpropagated one after another: "
        "what should the leaves hold at the end?",
        wrong={
            "a": "one pass gives a leaf its whole gradient: every contribution, however many times the "
            "leaf is used, arrives within that pass",
            "c": "backward() already walks every node and clears the inner ones: clearing the leaves in the "
            "same walk would cost nothing more",
            "d": "the sum at a merge happens within one pass, and inner nodes do it too while starting "
            "from 0 at every pass: it does not need the gradients of earlier passes",
        },
    ),
    revisit="gradients across passes: leaves add up, inner nodes start from 0",
)

UPSTREAM_SHAPE = predict(
    "upstream_shape",
    N09,
    "W of shape (10, 32), a batch of 64: the shape of the upstream gradient that layer's backward receives",
    Prediction(
        kind="shape",
        answer=(10, 64),
        explanation="the upstream gradient is ∂L/∂Z for the layer's output Z = W X + b: one row per output "
        "unit (10) and one column per example (64)",
        hint="the upstream gradient is the gradient of the layer's output: it has the shape of that output",
        wrong={
            (64, 10): "one example per column, as everywhere in the course: which axis holds the examples?",
            (10, 32): "that is the shape of W and of dW, which the layer computes; it receives the "
            "gradient of its output",
            (32, 64): "that is the shape of the layer's input and of dX, which it sends to the layer below",
        },
    ),
    revisit="one interface for every layer: backward(upstream, cache), upstream of the output's shape",
)

DECAY_FACTOR = predict(
    "decay_factor",
    N09,
    "weight decay λ = 0.2, learning rate η = 0.5, a zero data gradient: W's factor after two steps",
    Prediction(
        kind="number",
        answer=0.81,
        explanation="with no data gradient a step is W ← W − ηλW = (1 − ηλ)W = 0.9 W, and two steps "
        "multiply: 0.9 · 0.9 = 0.81",
        hint="write one step of gradient descent on λ/2 ‖W‖² alone, find the factor it multiplies W by, "
        "and apply it twice",
        wrong={
            0.9: "that is the factor of one step; the second step shrinks what the first one left",
            0.8: "each step multiplies W by its factor: two steps compound, they do not subtract ηλ twice",
            0.64: "that is what a penalty λ‖W‖², of gradient 2λW, would give; the course's penalty is "
            "λ/2 ‖W‖², of gradient λW",
            1: "the data gradient is zero, but the penalty's path still sends λW into W's gradient",
            1.21: "gradient descent moves against the gradient: the penalty's gradient λW points away "
            "from 0, so a step subtracts it",
        },
    ),
    revisit="weight decay: a second path into W, and a step that shrinks W",
)

KEY_GRADIENT_SHAPE = predict(
    "key_gradient_shape",
    N10,
    "an attention head with d = 64, d_k = 16 and T = 10 tokens: the shape of ∂L/∂K",
    Prediction(
        kind="shape",
        answer=(16, 10),
        explanation="K = W_k X holds one key of d_k = 16 numbers per token, one token per column, and "
        "a gradient has the shape of what it is the gradient of",
        hint="a gradient has the shape of what it is the gradient of: find the shape of K from the shapes "
        "of W_k and X",
        wrong={
            (10, 16): "tokens are columns in the course's layout: which axis holds the tokens?",
            (10, 10): "that is the shape of the scores S and of G = ∂L/∂S, one number per pair of tokens",
            (16, 64): "that is the shape of W_k and of its gradient, not of the keys",
            (64, 10): "that is the shape of X and of ∂L/∂X",
        },
    ),
    revisit="attention scores: S = QᵀK / √d_k and its two factors",
)

CLIPPED_NORM = predict(
    "clipped_norm",
    N10,
    "gradients of norms 3 and 4, clipped by global norm to c = 1: the norm of the first one after",
    Prediction(
        kind="number",
        answer=0.6,
        explanation="the global norm is √(3² + 4²) = 5 > 1, so every gradient is multiplied by 1/5: the "
        "first has norm 3/5 and the second 4/5, and the whole step keeps its direction",
        hint="compute the global norm of all the entries together, then the one factor that multiplies "
        "every gradient",
        wrong={
            1: "that is clipping the first array by its own norm; clipping by global norm multiplies every "
            "array by one factor, found from the norm of all of them together",
            3: "clipping acts whenever the global norm exceeds the threshold: compute the global norm",
            0.2: "that is the factor that multiplies every gradient; apply it to the first one's norm",
            3 / 7: "the global norm is the square root of the sum of the squared norms, not the sum of "
            "the norms",
        },
    ),
    revisit="gradient clipping by global norm: one factor for every gradient",
)

EXERCISES = (
    WHY_BACKPROP_IS_CHEAP,
    WHY_MUL_SCALES,
    WHY_STEP_NOT_TINY,
    WHY_REVERSE_ORDER,
    MERGE_SLOPE,
    DEAD_RELU,
    WHY_KEEP_FORWARD,
    TRUE_CLASS_SIGN,
    WHY_LABELS_SUM_TO_ONE,
    WHY_BIAS_SUMS,
    FLIPPED_SIGN,
    RESIDUAL_HELPS,
    RESIDUAL_EXPLODES,
    WHEN_FORWARD_MODE,
    FORWARD_PASSES,
    ASSIGN_AT_MERGE,
    WHY_LEAVES_ACCUMULATE,
    UPSTREAM_SHAPE,
    DECAY_FACTOR,
    KEY_GRADIENT_SHAPE,
    CLIPPED_NORM,
)
