"""Demo section: back propagation, as a graph of nodes and connections and in matrix form."""

import time

TITLE = "Chapter 3: back propagation (bp graph network and fc matrix network)"


def _largest_relative_error(pairs):
    return max(abs(e - a) / max(abs(e), abs(a), 1e-12) for e, a in pairs)


def _samples_per_second(train, samples, minimum_seconds=0.3):
    """Throughput of ``train(n)`` (which trains n samples), repeated until `minimum_seconds` passed."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < minimum_seconds:
        train(samples)
        count += samples
    return count / (time.perf_counter() - started)


def run(say):
    import numpy as np

    from fastnn.reference import bp as reference
    from fastnn.tutorial import bp, fc

    normalizer = bp.Normalizer()
    labels, data_set = bp.train_data_set(rng=0)
    net = bp.Network([8, 3, 8], rng=0)
    net.train(labels, data_set, 0.3, 50)
    say("8-3-8 network of nodes and connections, the tutorial's recipe (32 random bytes, rate 0.3, 50 epochs):")
    say(f"  correct ratio {bp.correct_ratio(net):.2%} of the 256 bytes "
        "(three hidden nodes are too few for 256 codes)")
    codes = [normalizer.norm(1 << bit) for bit in range(8)]
    encoder = bp.Network([8, 3, 8], rng=0)
    encoder.train(codes, codes, 1.0, 3000)
    learned = sum(normalizer.denorm(encoder.predict(c)) == 1 << b for b, c in enumerate(codes))
    say(f"  the classic 8-3-8 encoder (8 one-bit codes, rate 1.0, 3000 epochs): {learned}/8 reproduced")
    wide = bp.Network([8, 8, 8], rng=0)
    all_bytes = [normalizer.norm(i) for i in range(256)]
    wide.train(all_bytes, all_bytes, 1.0, 300)
    say(f"  8-8-8 on all 256 bytes (rate 1.0, 300 epochs): correct ratio {bp.correct_ratio(wide):.2%}")

    bp_check = bp.gradient_check(bp.Network([2, 2, 2], rng=1), [0.9, 0.1], [0.9, 0.1])
    fc_net = fc.Network([8, 3, 8], rng=1)
    x = np.array(normalizer.norm(5)).reshape(8, 1)
    fc_check = fc_net.gradient_check(x, x)
    say("Gradient checks against central differences (largest relative error):")
    say(f"  bp [2, 2, 2]: {_largest_relative_error(bp_check):.1e} over {len(bp_check)} connections")
    say(f"  fc [8, 3, 8]: {_largest_relative_error(fc_check):.1e} over {len(fc_check)} weights")

    rng = np.random.default_rng(0)
    images, targets = rng.random((2000, 784)), rng.random((2000, 10))
    fast = bp.Network([784, 100, 10], rng=0)
    fast.train(targets[:1], images[:1], 0.1, 1)  # compile (or load from the cache) outside the timing
    fast_rate = _samples_per_second(lambda n: fast.train(targets[:n], images[:n], 0.1, 1), 2000)
    twin = reference.Network([784, 100, 10], rng=0)
    twin_rate = _samples_per_second(lambda n: twin.train(targets[:n].tolist(), images[:n].tolist(), 0.1, 1), 2)
    say("Speed, bp.Network([784, 100, 10]) trained one sample at a time:")
    say(f"  fastnn {fast_rate:,.0f} samples/s vs plain-Python twin {twin_rate:,.1f} samples/s: "
        f"{fast_rate / twin_rate:,.0f}x")
