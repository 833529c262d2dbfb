/* socker-chdir DIR COMMAND [ARG...]: the first program of every socker container.
 *
 * Runs as the caller (the engine has already switched to their uid), changes to DIR and
 * executes COMMAND. The container itself starts in "/": asked for a working directory,
 * the engine's runtime would create it as root when missing, following symbolic links
 * inside the container, into whatever the caller's bind mounts reach.
 *
 * Exit status when COMMAND does not run: 125 if DIR cannot be entered, 127 if COMMAND is
 * not found or there is none (the image names none and neither did the caller), 126 if it
 * cannot be executed (as socker and docker run report them).
 * Built static by packaging/build: it must run in any image, whatever its C library.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "socker: the image names no command; give one after the image\n");
        return 127;
    }
    if (chdir(argv[1]) != 0) {
        fprintf(stderr, "socker: cannot enter the working directory %s: %s\n", argv[1], strerror(errno));
        return 125;
    }
    execvp(argv[2], argv + 2);
    int error = errno;
    fprintf(stderr, "socker: cannot run %s: %s\n", argv[2], strerror(error));
    return error == ENOENT || error == ENOTDIR ? 127 : 126;
}
