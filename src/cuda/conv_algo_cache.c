/* The cuDNN convolution algorithm cache (see conv_algo_cache.h). */
#include "cuda/conv_algo_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define CACHE_FILE_NAME "cudnn-conv-algos.tsv"

typedef struct algo_entry {
    char key[CONV_ALGO_KEY_MAX + 1];
    int algo, math_type;
} algo_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static int cache_loaded;
static int cache_rewrite;  /* the file was corrupt: rewrite it whole on the next store */
static algo_entry *cache_entries;
static int cache_count, cache_capacity;
static char cache_dir[1024], cache_path[1100];

static void resolve_paths(void)
{
    const char *dir = getenv("FACEGRAPH_CACHE_DIR");
    cache_dir[0] = 0;
    if (dir && dir[0]) {
        snprintf(cache_dir, sizeof cache_dir, "%s", dir);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME");
        const char *home = getenv("HOME");
        if (xdg && xdg[0])
            snprintf(cache_dir, sizeof cache_dir, "%s/facegraph", xdg);
        else if (home && home[0])
            snprintf(cache_dir, sizeof cache_dir, "%s/.cache/facegraph", home);
    }
    cache_path[0] = 0;
    if (cache_dir[0])
        snprintf(cache_path, sizeof cache_path, "%s/%s", cache_dir, CACHE_FILE_NAME);
}

/* mkdir -p; returns 0 when the directory exists afterwards. */
static int make_dirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    size_t n = strlen(buf);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char saved = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            buf[i] = saved;
        }
    }
    return 0;
}

static int entry_find(const char *key)
{
    for (int i = 0; i < cache_count; i++)
        if (strcmp(cache_entries[i].key, key) == 0)
            return i;
    return -1;
}

static int entry_put(const char *key, int algo, int math_type)
{
    int i = entry_find(key);
    if (i < 0) {
        if (cache_count == cache_capacity) {
            int cap = cache_capacity ? cache_capacity * 2 : 64;
            algo_entry *grown = realloc(cache_entries, (size_t)cap * sizeof *grown);
            if (!grown)
                return -1;
            cache_entries = grown;
            cache_capacity = cap;
        }
        i = cache_count++;
        snprintf(cache_entries[i].key, sizeof cache_entries[i].key, "%s", key);
    }
    cache_entries[i].algo = algo;
    cache_entries[i].math_type = math_type;
    return 0;
}

/* Parses "key\talgo\tmath\n"; returns 0 on success. */
static int parse_line(char *line, char **key, int *algo, int *math_type)
{
    size_t n = strlen(line);
    if (n == 0 || line[n - 1] != '\n')
        return -1; /* truncated write */
    line[n - 1] = 0;
    char *t1 = strchr(line, '\t');
    if (!t1 || t1 == line || t1 - line > CONV_ALGO_KEY_MAX)
        return -1;
    *t1 = 0;
    char *t2 = strchr(t1 + 1, '\t');
    if (!t2)
        return -1;
    *t2 = 0;
    char *end;
    long a = strtol(t1 + 1, &end, 10);
    if (end == t1 + 1 || *end || a < 0 || a > 1000)
        return -1;
    long m = strtol(t2 + 1, &end, 10);
    if (end == t2 + 1 || *end || m < 0 || m > 1000)
        return -1;
    *key = line;
    *algo = (int)a;
    *math_type = (int)m;
    return 0;
}

static void load_once(void)
{
    if (cache_loaded)
        return;
    cache_loaded = 1;
    resolve_paths();
    if (!cache_path[0])
        return;
    FILE *f = fopen(cache_path, "r");
    if (!f)
        return;
    char line[CONV_ALGO_KEY_MAX + 64];
    while (fgets(line, sizeof line, f)) {
        char *key;
        int algo, math_type;
        if (parse_line(line, &key, &algo, &math_type) != 0 || entry_put(key, algo, math_type) != 0) {
            /* corrupt: forget everything read from it and rewrite it later */
            cache_count = 0;
            cache_rewrite = 1;
            break;
        }
    }
    fclose(f);
}

static void persist(const char *key, int algo, int math_type)
{
    if (!cache_path[0] || make_dirs(cache_dir) != 0)
        return;
    if (cache_rewrite) {
        char tmp[1200];
        snprintf(tmp, sizeof tmp, "%s.tmp%ld", cache_path, (long)getpid());
        FILE *f = fopen(tmp, "w");
        if (!f)
            return;
        int ok = 1;
        for (int i = 0; i < cache_count; i++)
            if (fprintf(f, "%s\t%d\t%d\n", cache_entries[i].key, cache_entries[i].algo,
                        cache_entries[i].math_type) < 0)
                ok = 0;
        if (fclose(f) != 0)
            ok = 0;
        if (ok && rename(tmp, cache_path) == 0)
            cache_rewrite = 0;
        else
            remove(tmp);
        return;
    }
    FILE *f = fopen(cache_path, "a");
    if (!f)
        return;
    fprintf(f, "%s\t%d\t%d\n", key, algo, math_type);
    fclose(f);
}

int conv_algo_cache_lookup(const char *key, int *algo, int *math_type)
{
    if (!key || strlen(key) > CONV_ALGO_KEY_MAX)
        return 0;
    pthread_mutex_lock(&cache_lock);
    load_once();
    int i = entry_find(key);
    if (i >= 0) {
        *algo = cache_entries[i].algo;
        *math_type = cache_entries[i].math_type;
    }
    pthread_mutex_unlock(&cache_lock);
    return i >= 0;
}

void conv_algo_cache_store(const char *key, int algo, int math_type)
{
    if (!key || !key[0] || strlen(key) > CONV_ALGO_KEY_MAX || strpbrk(key, "\t\n\r"))
        return;
    pthread_mutex_lock(&cache_lock);
    load_once();
    int i = entry_find(key);
    int changed = i < 0 || cache_entries[i].algo != algo || cache_entries[i].math_type != math_type;
    if (changed && entry_put(key, algo, math_type) == 0)
        persist(key, algo, math_type);
    pthread_mutex_unlock(&cache_lock);
}
