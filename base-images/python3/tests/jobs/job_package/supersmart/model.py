def just_do_it(x: float, y: float) -> float:
    return x * y
