/* SPDX-License-Identifier: MIT */
#include "os.h"
