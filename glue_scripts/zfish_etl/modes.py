"""How the job writes joined_fish_data (its `join_mode`), where settings can read it without loading Spark.

`incremental` upserts only the new or changed rows, so only partitions with news are rewritten;
`full` re-upserts every labeled row of the range, as the walkthrough does.
"""

from typing import Literal, get_args

JoinMode = Literal["incremental", "full"]
JOIN_MODES: tuple[JoinMode, ...] = get_args(JoinMode)
