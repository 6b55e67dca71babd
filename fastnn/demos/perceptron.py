"""Demo section: the tutorial's AND perceptron and salary linear unit."""

TITLE = "Chapters 1-2: the perceptron and the linear unit"


def run(say):
    from fastnn.tutorial.linear_unit import LinearUnit
    from fastnn.tutorial.perceptron import Perceptron, f

    inputs, labels = [[1, 1], [0, 0], [1, 0], [0, 1]], [1, 0, 0, 0]
    p = Perceptron(2, f)
    p.train(inputs, labels, 10, 0.1)
    say("AND perceptron, 10 iterations at rate 0.1 (the tutorial gets weights [0.1, 0.2], bias -0.2):")
    say(f"  weights {[round(w, 12) for w in p.weights]}, bias {p.bias:.6f}")
    for x in inputs:
        say(f"  {x[0]} and {x[1]} = {p.predict(x)}")

    lu = LinearUnit(1)
    lu.train([[5], [3], [8], [1.4], [10.1]], [5500, 2300, 7600, 1800, 11400], 10, 0.01)
    say("Salary linear unit, 10 iterations at rate 0.01:")
    say(f"  weights {lu.weights}, bias {lu.bias:.6f}")
    for years in (3.4, 15, 1.5, 6.3):
        say(f"  work {years} years, monthly salary = {lu.predict([years]):.2f}")
