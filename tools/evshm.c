#include <evshm.h>
int main(void) { return 0; }
