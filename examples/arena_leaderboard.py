"""A Bradley-Terry leaderboard from 135k Chatbot Arena votes, in a few lines.

Run: ``python examples/arena_leaderboard.py``
"""

import warnings

import bradley

battles = bradley.datasets.load_arena_140k()  # model_a, model_b, winner

# The data hold 10 battles of a model against itself: dropping them is an
# explicit choice, reported with a count.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", bradley.DataWarning)
    comparisons = bradley.read_comparisons(battles, drop_self_comparisons=True)
for w in caught:
    print("note:", w.message)

model = bradley.BradleyTerry().fit(comparisons)
print(f"converged={model.converged_} in {model.n_iter_} iterations, log-likelihood {model.log_likelihood_:.2f}")
print(model.summary().head(10).to_string(index=False))

top, second = model.summary()["item"].iloc[:2]
print(f"\nP({top} beats {second}) = {model.predict_proba(top, second)[0]:.3f}")
