"""Demo section: a few seconds of training on the Fashion-MNIST sample bundled with fastnn."""

TITLE = "Training: a 784-300-10 MLP on 2,000 Fashion-MNIST images (fastnn.nn)"


def run(say):
    import time

    from fastnn.datasets import load_sample
    from fastnn.nn import SGD
    from fastnn.nn.models import mlp

    (x_train, y_train), (x_test, y_test) = load_sample(flatten=True)
    model = mlp(optimizer=SGD(lr=0.05, momentum=0.9), rng=0)
    started = time.perf_counter()
    model.fit(x_train, y_train, epochs=5, batch_size=64, validation_data=(x_test, y_test), seed=0, verbose=0)
    seconds = time.perf_counter() - started
    for epoch, (accuracy, val_accuracy) in enumerate(zip(model.history_["accuracy"], model.history_["val_accuracy"]), 1):
        say(f"  epoch {epoch}: training accuracy {accuracy * 100:5.1f}%, test accuracy {val_accuracy * 100:5.1f}%")
    say(f"  5 epochs in {seconds:.1f} s (compile included on a first run); "
        "`fastnn train --model lenet --dataset fashion-mnist` trains LeNet-5 on the full data set")
