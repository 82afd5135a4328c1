"""The phases of a match run, each a function of the run and the results of the phases before it:

    prepare(run) -> Prepared                     inputs read, checked, standardized; blocking candidates counted
    train(run, prepared) -> Trained              the prior, u and m of the Splink model
    block(run, prepared, trained) -> Blocking    the prediction rules, chosen with the trained model
    predict(run, prepared, blocking) -> Scored   the scored candidate pairs
    refit(run, prepared, trained, blocking, scored)  with answers drawn by `er review`: m refit, pairs rescored
    cluster(run, prepared, scored) -> Clusters   the threshold, linked pairs and their connected components
    assign_ids(run, prepared, clusters) -> Assigned  every input row with a stable match_id
    write(run, ...) -> MatchResult               the rows, report, pairs and model written

`run` (MatchRun) holds the parameters and the engine; tables stay in it, handled as `Table`s.
"""

from c360.entity_resolution.phases.block import Blocking, block
from c360.entity_resolution.phases.output import Assigned, assign_ids, write
from c360.entity_resolution.phases.prepare import Input, Prepared, prepare
from c360.entity_resolution.phases.refit import refit
from c360.entity_resolution.phases.run import MatchRun, timed
from c360.entity_resolution.phases.score import Clusters, Scored, cluster, predict
from c360.entity_resolution.phases.train import Trained, train

__all__ = ["Assigned", "Blocking", "Clusters", "Input", "MatchRun", "Prepared", "Scored", "Trained", "assign_ids",
           "block", "cluster", "predict", "prepare", "refit", "timed", "train", "write"]
