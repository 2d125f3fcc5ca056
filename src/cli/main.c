/* facegraph: the command line. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static void print_usage(FILE *to)
{
    fprintf(to, "usage: facegraph COMMAND [options]\n"
                "\n"
                "commands:\n"
                "  inspect MODEL [--shape NAME=1x3x640x640 ...] [--json]\n"
                "      inputs, outputs, opset, op histogram, parameters and FLOPs of an ONNX model\n"
                "  infer MODEL --input NAME=FILE.npy ... --output-dir DIR [--repeat N]\n"
                "      run a model on NumPy arrays and write one .npy per output\n"
                "  detect -t IMAGE [-o ANNOTATED.jpg] [--json] [--face-detector-model yolo_face|scrfd|retinaface|yunet]\n"
                "      find faces (boxes, scores, 5 landmarks) in a JPEG or PNG image\n"
                "  models [--models DIR] [--graphs] [--json]\n"
                "      list models and their support; --graphs: the CUDA-graph compatibility matrix\n"
                "\n"
                "execution options (every command that runs a model):\n"
                "  --execution-providers cpu     providers in order of preference (this build: %s)\n"
                "  --execution-device-id N       GPU index for GPU providers\n"
                "  --execution-thread-count N    CPU threads (default: all cores)\n"
                "  --cuda-graph auto|on|off      run models as validated CUDA graphs (default auto;\n"
                "                                FACEGRAPH_CUDA_GRAPH=0 switches them off)\n"
                "  --cuda-graph-exclude MODEL..  never capture these models (file name or stem)\n"
                "  --cuda-tf32 on|off            TF32 tensor cores for float32 conv/matmul (default off)\n"
                "  --execution-precision fp32|fp16  fp16: convolutions in float16 on tensor cores where\n"
                "                                faster (cuda; float16 models always do so)\n"
                "  --cudnn-conv-algo-search exhaustive|heuristic|default   (default exhaustive, cached)\n"
                "\n"
                "`facegraph COMMAND --help` shows a command's options.\n"
                "exit status: 0 done, 1 error, 2 bad usage, 3 valid but not supported (op, provider, ...)\n",
            fg_available_providers());
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *command = argv[1];
    if (!strcmp(command, "inspect"))
        return cli_inspect(argc - 1, argv + 1);
    if (!strcmp(command, "infer"))
        return cli_infer(argc - 1, argv + 1);
    if (!strcmp(command, "detect"))
        return cli_detect(argc - 1, argv + 1);
    if (!strcmp(command, "models"))
        return cli_models(argc - 1, argv + 1);
    fprintf(stderr, "facegraph: unknown command '%s'\n\n", command);
    print_usage(stderr);
    return 2;
}
