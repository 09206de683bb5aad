"""Run `airflow <args>` commands one after another in this one Airflow process.

Started by tests.dags.airflow_env.AirflowProcess. Each request (one JSON line on
stdin: args, env, cwd) runs Airflow's own command-line entry point,
`airflow.__main__.main`, with that argv, environment and working directory, as a
fresh `airflow` process would; the exit code goes back as one JSON line on the file
descriptor named by argv[1], the output to this process's stdout and stderr.

Why one process: a fresh `airflow dags test` spends most of a short run importing
Airflow, building its in-process execution API and importing dlt and dbt, each time
again (about 20 s of a 35 s run on the 2-core CI machine). Airflow reads its own
configuration once per process, so a request whose AIRFLOW* variables differ from
this process's is refused rather than run with the wrong configuration.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def _airflow_variables(env: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith("AIRFLOW")}


def main() -> None:
    replies = os.fdopen(int(sys.argv[1]), "w")
    configured = _airflow_variables(os.environ)
    from airflow.__main__ import main as airflow_main

    for line in sys.stdin:
        request = json.loads(line)
        env: dict[str, str] = request["env"]
        if _airflow_variables(env) != configured:
            print("refused: AIRFLOW* variables differ from this process's", flush=True)
            returncode = 2
        else:
            # The project's settings are read from the environment at task time, and
            # a task sets variables of its own: start each command from its own.
            os.environ.clear()
            os.environ.update(env)
            os.chdir(request["cwd"])
            sys.argv = ["airflow", *request["args"]]
            returncode = _run(airflow_main)
        sys.stdout.flush()
        sys.stderr.flush()
        replies.write(json.dumps({"returncode": returncode}) + "\n")
        replies.flush()


def _run(airflow_main: object) -> int:
    """The exit code `airflow` would have exited with."""
    try:
        airflow_main()  # type: ignore[operator]
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)  # as the interpreter prints it
        return 1
    except Exception:  # an uncaught error ends `airflow` with 1 and its traceback
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    main()
