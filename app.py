"""GenDeF studio: ``python app.py`` locally (127.0.0.1) or as a Hugging Face Space (app_file: app.py)."""
import argparse
import logging
import os
import sys


def parse_args(argv=None):
    on_space = bool(os.environ.get("SPACE_ID"))
    # A Space tells us where to bind; locally stay on loopback unless asked otherwise.
    default_host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space else "127.0.0.1")
    default_port = int(os.environ.get("GRADIO_SERVER_PORT") or 7860)
    p = argparse.ArgumentParser(description="GenDeF studio (Gradio)")
    p.add_argument("--host", default=default_host, help="interface to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=default_port, help="port (default %(default)s)")
    p.add_argument("--share", action="store_true", help="create a public gradio.live link")
    p.add_argument("--verbose", action="store_true", help="let the video decoders (OpenCV, ffmpeg) log to the terminal")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the whole studio, set once at start (default: torch's)")
    p.add_argument(
        "--max-upload-mb",
        default=None,
        metavar="N",
        help="largest upload in MB, 1..4096, e.g. to reopen a whole clip's exported .npz "
        "(default: $GENDEF_MAX_UPLOAD_MB or 50, as on a Space)",
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="save_pretrained folder or hub id (default: $GENDEF_CHECKPOINT or checkpoints/default)",
    )
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # user errors are one-line toasts; anything else is logged here with its traceback
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.checkpoint:
        os.environ["GENDEF_CHECKPOINT"] = args.checkpoint
    if not 0 < args.port < 65536:
        sys.exit(f"error: --port must be 1..65535, got {args.port}")
    if args.threads is not None and args.threads < 1:
        sys.exit(f"error: --threads must be >= 1, got {args.threads}")
    from gendef.extras import missing_message
    from gendef.video.reader import set_verbose

    missing = missing_message("app")
    if missing:
        sys.exit(f"error: {missing}")
    from app.uploads import Uploads
    from gendef.errors import GenDeFError

    try:
        uploads = Uploads.at_launch(args.max_upload_mb, os.environ)  # absurd caps stop here, in one line
    except GenDeFError as e:
        sys.exit(f"error: {e}")
    set_verbose(args.verbose)
    from app.checkpoints import is_served
    from app.services import Services
    from app.state import install_exit_cleanup
    from app.ui import build_demo, launch_kwargs

    # the studio's one Services: beyond loopback the Checkpoint box takes only safe names
    services = Services(threads=args.threads, served=is_served(args.host, args.share), uploads=uploads)
    services.start()
    install_exit_cleanup()
    demo = build_demo(args.checkpoint, services)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=True, **launch_kwargs(services.uploads))


if __name__ == "__main__":
    main()
